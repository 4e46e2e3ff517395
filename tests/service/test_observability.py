"""Observability: Prometheus metrics (in process and aggregated over worker processes), request ids and JSON
log lines."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.service import metrics
from api.service.harness import Server
from api.service.metrics import sample_value
from api.service.observability import JsonFormatter, configure_logging, log_startup, redact_url
from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}
STATE = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 20]


@pytest.fixture
def client(app_factory, tmp_path):
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'o.db'}")) as c:
        yield c


@pytest.fixture
def json_logs():
    """JSON lines of the ``redwood`` loggers at INFO into a buffer (the logger's state restored after)."""
    logger = logging.getLogger("redwood")
    level, handlers = logger.level, list(logger.handlers)
    buf = io.StringIO()
    configure_logging("info", stream=buf)
    yield buf
    for h in list(logger.handlers):
        if h not in handlers:
            logger.removeHandler(h)
    logger.setLevel(level)


def _scrape(c: TestClient, headers: dict | None = None) -> str:
    r = c.get("/metrics", headers=headers if headers is not None else H)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def test_metrics_count_requests_decisions_and_feedback(client):
    assert client.get("/metrics").status_code == 401
    read = client.post("/v1/keys", json={"name": "r", "scopes": ["read"]}, headers=H).json()["key"]
    before = _scrape(client, {"Authorization": f"Bearer {read}"})  # Prometheus' authorization: credentials
    route = "/v1/sessions/{session_id}/select"
    sel_before = sample_value(before, "redwood_http_requests_total", {"route": route, "status": "201"}) or 0.0
    fb_before = sample_value(before, "redwood_bandit_feedback_total", {"outcome": "stored"}) or 0.0
    replay_before = sample_value(before, "redwood_bandit_feedback_total", {"outcome": "replayed"}) or 0.0

    pid = client.post("/v1/policies", json={"path": "cap10"}, headers=H).json()["id"]
    for _ in range(3):
        assert client.post(f"/v1/policies/{pid}/decisions", json={"state": STATE}, headers=H).status_code == 201
    assert (
        client.post(
            f"/v1/policies/{pid}/decisions", json={"state": STATE, "deadline_seconds": 1e-6}, headers=H
        ).status_code
        == 201
    )
    sid = client.post(
        "/v1/sessions", json={"kind": "cucb", "n_arms": 4, "constraint": {"type": "top_k", "k": 2}}, headers=H
    ).json()["id"]
    for _ in range(2):
        sel = client.post(f"/v1/sessions/{sid}/select", json={}, headers=H).json()
        fb = f"/v1/sessions/{sid}/decisions/{sel['id']}/feedback"
        assert client.post(fb, json={"reward": 0.5}, headers=H).status_code == 201
    assert client.post(fb, json={"reward": 0.5}, headers=H).status_code == 200
    client.get(f"/v1/sessions/{'f' * 32}", headers=H)  # a 404 on a templated route

    text = _scrape(client)
    assert sample_value(text, "redwood_http_requests_total", {"route": route, "status": "201"}) == sel_before + 2
    assert (
        sample_value(
            text,
            "redwood_http_requests_total",
            {"method": "POST", "route": "/v1/policies/{policy_id}/decisions", "status": "201"},
        )
        >= 4
    )
    assert (
        sample_value(text, "redwood_http_requests_total", {"route": "/v1/sessions/{session_id}", "status": "404"}) >= 1
    )
    assert f"/v1/sessions/{sid}" not in text  # templates, never raw paths
    assert sample_value(text, "redwood_http_request_duration_seconds_count", {"route": route}) >= 2
    assert (
        sample_value(text, "redwood_decisions_total", {"policy_id": pid, "selector": "mip", "status": "optimal"}) == 3
    )
    assert sample_value(text, "redwood_decision_seconds_count", {"policy_id": pid, "selector": "mip"}) >= 3
    assert sample_value(text, "redwood_decisions_deadline_hit_total", {"policy_id": pid}) == 1
    assert sample_value(text, "redwood_bandit_feedback_total", {"outcome": "stored"}) == fb_before + 2
    assert sample_value(text, "redwood_bandit_feedback_total", {"outcome": "replayed"}) == replay_before + 1
    assert sample_value(text, "redwood_bandit_selections_total") >= 2


def test_job_states_gauge(client, tmp_path):
    def scrape_without_db() -> str:
        return metrics.exposition()[0].decode()

    metrics.set_job_states({"running": 2, "queued": 1})
    text = scrape_without_db()
    assert sample_value(text, "redwood_jobs", {"state": "running"}) == 2
    assert sample_value(text, "redwood_jobs", {"state": "failed"}) == 0
    metrics.set_job_states({"queued": 3})  # states not given drop to 0
    text = scrape_without_db()
    assert sample_value(text, "redwood_jobs", {"state": "running"}) == 0
    assert sample_value(text, "redwood_jobs", {"state": "queued"}) == 3

    class Db:  # a database with a jobs table (state column), as the training-jobs service keeps one
        read = sa.create_engine(f"sqlite:///{tmp_path / 'jobs.db'}")

    with Db.read.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT, created_at REAL)")
        conn.exec_driver_sql(
            "INSERT INTO jobs VALUES ('a', 'running', 1), ('b', 'succeeded', 2), ('c', 'succeeded', 3)"
        )
    assert metrics.job_states_from_db(Db) == {"running": 1, "succeeded": 2}
    text = metrics.exposition(Db)[0].decode()  # a scrape refreshes the gauge from the table
    assert sample_value(text, "redwood_jobs", {"state": "succeeded"}) == 2
    assert sample_value(text, "redwood_jobs", {"state": "queued"}) == 0
    Db.read.dispose()

    class NoJobs:
        read = sa.create_engine(f"sqlite:///{tmp_path / 'none.db'}")

    assert metrics.job_states_from_db(NoJobs) is None  # no table: the last reported counts stay
    assert sample_value(metrics.exposition(NoJobs)[0].decode(), "redwood_jobs", {"state": "running"}) == 1
    NoJobs.read.dispose()
    # the app's own scrape reads its database's jobs table when it has one, and never fails without it
    assert sample_value(_scrape(client), "redwood_jobs", {"state": "queued"}) is not None
    metrics.set_job_states({})


def test_request_ids_and_json_access_lines(client, json_logs):
    r = client.get("/v1/health", headers={"X-Request-ID": "abc-123.x"})
    assert r.headers["X-Request-ID"] == "abc-123.x"
    bad = client.get("/v1/health", headers={"X-Request-ID": "no spaces <allowed>"})
    assert bad.headers["X-Request-ID"] != "no spaces <allowed>" and len(bad.headers["X-Request-ID"]) == 32
    generated = client.get(f"/v1/sessions/{'0' * 32}", headers=H)
    assert generated.status_code == 404 and len(generated.headers["X-Request-ID"]) == 32
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    access = [rec for rec in lines if rec.get("route")]
    assert len(access) == 3
    for rec in access:
        assert {"time", "level", "logger", "message", "request_id", "method", "route", "status", "duration_ms"} <= set(
            rec
        )
        assert rec["logger"] == "redwood.service" and rec["level"] == "INFO" and rec["time"].endswith("Z")
    assert access[0]["request_id"] == "abc-123.x" and access[0]["route"] == "/v1/health"
    assert access[1]["request_id"] == bad.headers["X-Request-ID"]
    assert access[2]["request_id"] == generated.headers["X-Request-ID"]
    assert access[2]["route"] == "/v1/sessions/{session_id}" and access[2]["status"] == 404


def test_log_records_inside_a_request_carry_its_id(client, caplog, json_logs):
    """Any record logged while serving a request (here the 500 handler's) carries that request's id."""

    def boom(*_a, **_k):
        raise RuntimeError("boom")

    client.app.state.sessions.info = boom
    with caplog.at_level(logging.ERROR, logger="redwood.service"):
        c = TestClient(client.app, raise_server_exceptions=False)
        r = c.get(f"/v1/sessions/{'1' * 32}", headers=H | {"X-Request-ID": "req-500"})
    assert r.status_code == 500
    errors = [json.loads(line) for line in json_logs.getvalue().splitlines() if '"ERROR"' in line]
    assert errors and errors[0]["request_id"] == "req-500" and "boom" in errors[0]["exc"]
    assert any(rec.levelno == logging.ERROR for rec in caplog.records)
    formatted = JsonFormatter().format(caplog.records[-1])
    assert json.loads(formatted)["logger"] == "redwood.service"


def test_log_levels_follow_uvicorn_names():
    from api.service.observability import log_level

    assert log_level("info") == logging.INFO and log_level("WARNING") == logging.WARNING
    assert log_level("trace") == logging.DEBUG and log_level("nonsense") == logging.WARNING


def test_startup_line_redacts_the_password():
    assert (
        redact_url("postgresql+psycopg://bob:s3cret@db:5432/redwood") == "postgresql+psycopg://bob:***@db:5432/redwood"
    )
    buf = io.StringIO()
    logger = logging.getLogger("redwood")
    handlers = list(logger.handlers)
    configure_logging("warning", stream=buf)  # the start-up line is shown at any level
    try:
        log_startup("postgresql+psycopg://bob:s3cret@db/redwood", 3)
    finally:
        for h in list(logger.handlers):
            if h not in handlers:
                logger.removeHandler(h)
    line = json.loads(buf.getvalue().strip())
    assert line["workers"] == 3 and "s3cret" not in buf.getvalue() and line["database"].endswith("@db/redwood")
    assert line["version"] and line["message"] == "redwood service starting"


def test_metrics_aggregate_worker_processes(policy_dir, tmp_path):
    """``--workers 2``: every scrape (whichever worker answers) counts the requests served by both, and the
    start-up line is one JSON object naming the workers."""
    server = Server(f"sqlite:///{tmp_path / 'mp.db'}", policy_dir, ADMIN, extra=["--workers", "2"]).start()
    try:
        n = 30
        for _ in range(n):  # a new connection each time: both workers serve some
            assert httpx.get(f"{server.base}/v1/version", timeout=10).status_code == 200
        pids = set()
        for _ in range(4):
            text = httpx.get(f"{server.base}/metrics", headers=H, timeout=10).text
            assert sample_value(text, "redwood_http_requests_total", {"route": "/v1/version", "status": "200"}) == n
            pids.add(httpx.get(f"{server.base}/v1/health", timeout=10).headers.get("x-request-id"))
    finally:
        server.stop()
    err = server.proc.stderr.read().decode()
    starts = [json.loads(line) for line in err.splitlines() if line.startswith("{") and "starting" in line]
    assert starts and starts[0]["workers"] == 2 and starts[0]["database"].startswith("sqlite:///")
