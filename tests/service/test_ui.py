"""The operator page in process: key by cookie (log-in form) or ?key=, escaping, the jobs list, the charts.
The same page in a real browser: tests/service/test_ui_browser.py."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.service import ui
from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}
STATE = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 20]


def _client(app_factory, tmp_path) -> TestClient:
    return TestClient(app_factory(f"sqlite:///{tmp_path / 'ui.db'}"), follow_redirects=False)


def test_page_needs_a_read_key_by_cookie_or_query(app_factory, tmp_path):
    with _client(app_factory, tmp_path) as c:
        r = c.get("/v1/ui")
        assert r.status_code == 303 and r.headers["location"] == "/v1/ui/login"
        assert c.get("/v1/ui/login").status_code == 200
        bad = c.get("/v1/ui?key=rw_nope")
        assert bad.status_code == 401 and 'id="error"' in bad.text and "text/html" in bad.headers["content-type"]
        read = c.post("/v1/keys", json={"name": "ops", "scopes": ["read"]}, headers=H).json()["key"]
        page = c.get(f"/v1/ui?key={read}")
        assert page.status_code == 200 and "Redwood operator" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer" and page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text and "http://" not in page.text.replace('xmlns="http://www.w3.org', "")

        failed = c.post("/v1/ui/login", data={"key": "rw_wrong"})
        assert failed.status_code == 401 and "set-cookie" not in failed.headers
        ok = c.post("/v1/ui/login", data={"key": read})
        assert ok.status_code == 303 and ok.headers["location"] == "/v1/ui"
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/v1/ui" in cookie
        assert c.get("/v1/ui").status_code == 200  # the client keeps the cookie
        out = c.post("/v1/ui/logout")
        assert out.status_code == 303 and 'redwood_ui_key=""' in out.headers["set-cookie"]
        assert "/v1/ui" not in {p for p in c.get("/v1/openapi.json").json()["paths"]}  # HTML: not in the API


def test_page_lists_policies_sessions_and_decisions(app_factory, tmp_path):
    with _client(app_factory, tmp_path) as c:
        pid = c.post("/v1/policies", json={"path": "cap10"}, headers=H).json()["id"]
        ids = [c.post(f"/v1/policies/{pid}/decisions", json={"state": STATE}, headers=H).json()["id"] for _ in range(3)]
        sid = c.post(
            "/v1/sessions", json={"kind": "thompson", "n_arms": 3, "constraint": {"type": "top_k", "k": 1}}, headers=H
        ).json()["id"]
        text = c.get(f"/v1/ui?key={ADMIN}").text
        assert pid in text and sid in text and all(i in text for i in ids)
        assert text.count("<svg") == 1  # the latency chart (this checkpoint has no evaluation in its metadata)
        assert "no jobs" in text or 'id="jobs"' in text


def test_everything_from_the_database_is_escaped():
    evil = '<script>alert("x")</script>'
    data = {
        "policies": [
            {
                "id": evil,
                "scenario": evil,
                "policy_version": evil,
                "path": evil,
                "state_length": 3,
                "created_at": 0.0,
                "training_summary": {"evaluation": {"returns": [1.0, 2.0, 1.5]}},
            }
        ],
        "jobs": (["id", "state", "error"], [{"id": evil, "state": evil, "error": evil}]),
        "sessions": [{"id": evil, "kind": evil, "n_selections": 1, "n_feedback": 0, "created_at": 1.0}],
        "decisions": [
            {
                "id": evil,
                "policy_id": evil,
                "selector": evil,
                "status": evil,
                "value": evil,
                "seconds": 0.01,
                "deadline_hit": True,
                "action": [evil],
                "created_at": 1.0,
            }
        ],
        "totals": {"decisions": 1, "sessions": 1},
    }
    page = ui.page(data, evil, evil)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert page.count("<svg") == 2  # the returns line and the latency bars


def test_jobs_table_when_the_database_has_one(tmp_path):
    class Db:
        read = sa.create_engine(f"sqlite:///{tmp_path / 'jobs.db'}")

    assert ui.job_rows(Db) is None
    with Db.read.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT, state TEXT, spec TEXT, created_at REAL)"
        )
        conn.exec_driver_sql(
            "INSERT INTO jobs VALUES ('j1', 'train', 'running', '{}', 1), ('j2', 'sweep', 'failed', '{}', 2)"
        )
    columns, rows = ui.job_rows(Db)
    assert columns == ["id", "kind", "state", "created_at"] and [r["id"] for r in rows] == ["j2", "j1"]
    html = ui._jobs((columns, rows))
    assert "j1" in html and "running" in html and "failed" in html
    Db.read.dispose()


def test_charts():
    assert ui.bar_chart([], "t") == "" and ui.line_chart([float("nan")], "t") == ""
    bars = ui.bar_chart([1.0, 2.0, 0.0], "latency", highlight=[False, True, False])
    assert bars.count("<rect") == 3 and "#c0392b" in bars
    line = ui.line_chart([3.0, 1.0, 2.0], "returns")
    assert "<polyline" in line and line.startswith("<svg")
    assert ui.evaluation_returns({"training_summary": {"snapshot_returns": [1, 2]}}) == (
        "snapshot evaluation returns",
        [1.0, 2.0],
    )
    assert ui.evaluation_returns({"training_summary": {"episode_returns": [1, 2]}}) is None
