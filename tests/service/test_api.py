"""In-process API tests: auth, paths, validation, decisions, idempotency, sessions, restore after restart."""

from __future__ import annotations

import copy
import os

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}
STATE = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 20]


@pytest.fixture
def client(app_factory, tmp_path):
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        yield c


def _key(c: TestClient, *scopes: str) -> dict:
    r = c.post("/v1/keys", json={"name": "k", "scopes": list(scopes)}, headers=H)
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["key"]}


def _policy(c: TestClient) -> str:
    r = c.post("/v1/policies", json={"path": "cap10"}, headers=H)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _err(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_auth_scopes_and_revocation(client):
    assert client.get("/v1/health").json() == {"status": "ok", "database": "ok"}
    _err(client.get("/v1/scenarios"), 401, "unauthorized")
    _err(client.get("/v1/scenarios", headers={"X-API-Key": "nope"}), 401)
    read = _key(client, "read")
    assert client.get("/v1/scenarios", headers=read).status_code == 200
    _err(client.post("/v1/policies", json={"path": "cap10"}, headers=read), 403, "forbidden")
    _err(
        client.post(
            "/v1/sessions", json={"kind": "cucb", "n_arms": 3, "constraint": {"type": "top_k", "k": 1}}, headers=read
        ),
        403,
    )
    keys = client.get("/v1/keys", headers=H).json()["keys"]
    assert all("hash" not in k for k in keys)
    client.app.state.keys.ttl = 0.0
    kid = next(k["id"] for k in keys if k["scopes"] == ["read"])
    assert client.delete(f"/v1/keys/{kid}", headers=H).status_code == 204
    _err(client.get("/v1/scenarios", headers=read), 401)


def test_keys_are_stored_hashed(client):
    import sqlalchemy as sa

    from api.service.db import api_keys

    key = _key(client, "decide")["X-API-Key"]
    with client.app.state.db.main.connect() as conn:
        hashes = [r[0] for r in conn.execute(sa.select(api_keys.c.hash))]
    assert key not in hashes and ADMIN not in hashes and all(len(h) == 64 for h in hashes)


def test_policy_paths_stay_inside_policy_dir(client, policy_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (outside / "weights.safetensors").write_text("")
    link = policy_dir / "escape"
    if not link.exists():
        os.symlink(outside, link)
    for bad in ["../cap10", "/etc", "cap10/../../x", "escape", "escape/", "~/x", "a\\..\\b", "cap10\x00"]:
        r = client.post("/v1/policies", json={"path": bad}, headers=H)
        assert r.status_code in (404, 422), (bad, r.text)
        assert r.status_code == 422 or bad == "~/x"
    _err(client.post("/v1/policies", json={"path": "missing"}, headers=H), 404)


def test_policy_register_get_list_delete(client):
    pid = _policy(client)
    info = client.get(f"/v1/policies/{pid}", headers=H).json()
    assert info["scenario"] == "capacity" and info["state_length"] == 11 and info["network"]["n_actions"] == 10
    assert info["training_summary"]["note"] == "untrained test weights"
    assert [p["id"] for p in client.get("/v1/policies", headers=H).json()["policies"]] == [pid]
    assert client.delete(f"/v1/policies/{pid}", headers=H).status_code == 204
    _err(client.get(f"/v1/policies/{pid}", headers=H), 404)
    _err(client.post(f"/v1/policies/{pid}/decisions", json={"state": STATE}, headers=H), 404)


def test_decisions_deadline_and_idempotency(client):
    pid = _policy(client)
    r = client.post(f"/v1/policies/{pid}/decisions", json={"state": STATE, "selector": "auto"}, headers=H)
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["status"] == "optimal" and len(d["action"]) == 10 and d["policy_version"]
    assert client.get(f"/v1/decisions/{d['id']}", headers=H).json() == d
    r = client.post(f"/v1/policies/{pid}/decisions", json={"state": STATE, "deadline_seconds": 1e-6}, headers=H)
    assert r.status_code == 201 and r.json()["deadline_hit"] and r.json()["status"] in ("time_limit", "heuristic")
    # the deadline counts from arrival: a request that already used it up queueing gets the greedy answer
    import time

    decisions = client.app.state.decisions
    late, _ = decisions.decide(
        pid, {"state": STATE, "selector": "mip", "deadline_seconds": 0.05}, None, received=time.perf_counter() - 1.0
    )
    assert late["deadline_hit"] and late["selector"] == "greedy" and late["status"] == "heuristic"
    on_time, _ = decisions.decide(
        pid, {"state": STATE, "selector": "mip", "deadline_seconds": 5.0}, None, received=time.perf_counter()
    )
    assert not on_time["deadline_hit"] and on_time["selector"] == "mip" and on_time["status"] == "optimal"
    assert on_time["value"] >= late["value"] - 1e-9
    late_greedy, _ = decisions.decide(
        pid, {"state": STATE, "selector": "greedy", "deadline_seconds": 0.05}, None, received=time.perf_counter() - 1.0
    )
    assert late_greedy["deadline_hit"] and late_greedy["action"] == late["action"]
    k = H | {"Idempotency-Key": "abc-1"}
    first = client.post(f"/v1/policies/{pid}/decisions", json={"state": STATE, "selector": "greedy"}, headers=k)
    again = client.post(f"/v1/policies/{pid}/decisions", json={"state": STATE, "selector": "greedy"}, headers=k)
    assert first.status_code == 201 and again.status_code == 200 and first.json() == again.json()
    other = dict(zip(["state", "selector"], [[*STATE[:-1], 19], "greedy"], strict=True))
    _err(client.post(f"/v1/policies/{pid}/decisions", json=other, headers=k), 422, "idempotency_key_reused")


@pytest.mark.parametrize(
    "body,raw,field",
    [
        ({"state": [True] * 11}, None, "state.0"),
        ({"state": [0] * 10 + [20.5]}, None, "state.10"),
        ({"state": [9] * 10 + [20]}, None, "state"),
        ({"state": [0] * 12}, None, "state"),
        ({"state": [0] * 10 + [20], "deadline_seconds": -1}, None, "deadline_seconds"),
        ({"state": [0] * 10 + [20], "deadline_seconds": True}, None, "deadline_seconds"),
        ({"state": [0] * 20_000}, None, "state"),
        (None, b'{"state": [0,0,0,0,0,0,0,0,0,0,20], "deadline_seconds": NaN}', "body"),
        (None, b'{"state": [0,0,0,0,0,0,0,0,0,0,20], "deadline_seconds": Infinity}', "body"),
        (None, b'{"state": [1' + b"0" * 5000 + b"]}", "state.0"),  # out of range, naming where
        (None, b'{"state": [', "body"),
        ({"state": STATE, "selector": "nope"}, None, "selector"),
        ({"state": STATE, "extra": 1}, None, "extra"),
    ],
)
def test_bad_decision_input_is_4xx_naming_the_field(client, body, raw, field):
    pid = _policy(client)
    url = f"/v1/policies/{pid}/decisions"
    r = (
        client.post(url, json=body, headers=H)
        if raw is None
        else client.post(url, content=raw, headers=H | {"content-type": "application/json"})
    )
    assert 400 <= r.status_code < 500, r.text
    err = _err(r, r.status_code)
    assert err["field"] == field or (err["field"] or "").startswith(field), err


def test_body_size_limit(app_factory, tmp_path):
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}", max_body_bytes=1000)) as c:
        _err(c.post("/v1/scenarios/capacity/validate", json={"instance": {"x": "y" * 2000}}, headers=H), 413)


def test_validate_instance(client):
    from scenarios import make

    inst = make("capacity", n_arms=5, budget=2, seed=0).instance.model_dump(mode="json")
    r = client.post("/v1/scenarios/capacity/validate", json={"instance": inst}, headers=H).json()
    assert r == {"scenario": "capacity", "valid": True, "n_arms": 5, "error": None}
    bad = inst | {"costs": [0] * 5}
    r = client.post("/v1/scenarios/capacity/validate", json={"instance": bad}, headers=H).json()
    assert not r["valid"] and r["error"]["field"].startswith("instance")
    _err(client.post("/v1/scenarios/nope/validate", json={"instance": inst}, headers=H), 404)


def _cucb(c: TestClient, n: int = 6, k: int = 2, kind: str = "cucb") -> str:
    r = c.post(
        "/v1/sessions", json={"kind": kind, "n_arms": n, "constraint": {"type": "top_k", "k": k}, "seed": 3}, headers=H
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_session_feedback_semantics(client):
    sid = _cucb(client)
    sel = client.post(f"/v1/sessions/{sid}/select", json={}, headers=H).json()
    url = f"/v1/sessions/{sid}/decisions/{sel['id']}/feedback"
    rewards = [0.5 if a else None for a in sel["action"]]
    r = client.post(url, json={"rewards": rewards}, headers=H)
    assert r.status_code == 201 and r.json()["rounds"] == 1
    assert client.post(url, json={"rewards": rewards}, headers=H).status_code == 200
    _err(client.post(url, json={"reward": 1.0}, headers=H), 409, "conflicting_feedback")
    _err(client.post(f"/v1/sessions/{sid}/decisions/unknown/feedback", json={"reward": 1.0}, headers=H), 404)
    _err(client.post(f"/v1/sessions/nope/decisions/{sel['id']}/feedback", json={"reward": 1.0}, headers=H), 404)
    sel2 = client.post(f"/v1/sessions/{sid}/select", json={}, headers=H).json()
    url2 = f"/v1/sessions/{sid}/decisions/{sel2['id']}/feedback"
    _err(client.post(url2, json={}, headers=H), 422)
    _err(client.post(url2, json={"reward": 1, "rewards": rewards}, headers=H), 422)
    _err(client.post(url2, json={"rewards": [None] * 6}, headers=H), 422)
    r = client.post(url2, json={"reward": 0.8}, headers=H).json()
    applied = [v for v in r["rewards_applied"] if v is not None]
    assert len(applied) == 2 and abs(sum(applied) - 0.8) < 1e-9
    state = client.get(f"/v1/sessions/{sid}", headers=H).json()
    assert state["selections"] == 2 and state["feedback"] == 2 and state["state"]["rounds"] == 2


def test_whittle_session(client):
    import numpy as np

    rng = np.random.default_rng(0)
    n, s = 30, 3
    p = rng.dirichlet(np.ones(s), size=(n, 2, s))
    r = np.repeat(np.tile(np.arange(s, dtype=float), (n, 1))[:, :, None], 2, axis=2)
    arms = {"transitions": p.tolist(), "rewards": r.tolist(), "costs": [[0, 1]] * n, "initial": [[1, 0, 0]] * n}
    res = client.post(
        "/v1/sessions", json={"kind": "whittle", "arms": arms, "budget": 5, "allow_non_indexable": True}, headers=H
    )
    assert res.status_code == 201, res.text
    sid = res.json()["id"]
    sel = client.post(f"/v1/sessions/{sid}/select", json={"states": [1] * n}, headers=H)
    assert sel.status_code == 201 and sum(sel.json()["action"]) <= 5
    _err(client.post(f"/v1/sessions/{sid}/select", json={"states": [1] * (n - 1)}, headers=H), 422)
    _err(client.post(f"/v1/sessions/{sid}/select", json={"states": [7] * n}, headers=H), 422)
    fb = client.post(
        f"/v1/sessions/{sid}/decisions/{sel.json()['id']}/feedback",
        json={"reward": 2.0, "next_states": [0] * n},
        headers=H,
    )
    assert fb.status_code == 201, fb.text
    bad = dict(arms, transitions=(p * 2).tolist())
    _err(client.post("/v1/sessions", json={"kind": "whittle", "arms": bad, "budget": 5}, headers=H), 422)


def test_sessions_survive_restart(app_factory, db_url):
    """Everything acknowledged is restored by a new app on the same database (SQLite and PostgreSQL)."""
    with TestClient(app_factory(db_url)) as c:
        sids = [_cucb(c), _cucb(c, 8, 3, "thompson")]
        for sid in sids:
            for i in range(6):
                sel = c.post(f"/v1/sessions/{sid}/select", json={}, headers=H).json()
                c.post(
                    f"/v1/sessions/{sid}/decisions/{sel['id']}/feedback",
                    json={"reward": 0.1 * i} if i % 2 else {"rewards": [0.7 if a else None for a in sel["action"]]},
                    headers=H,
                ).raise_for_status()
        before = [c.get(f"/v1/sessions/{sid}", headers=H).json() for sid in sids]
        runtimes = [c.app.state.sessions.runtime(sid) for sid in sids]
        nxt = [copy.deepcopy(rt.policy).select().action.tolist() for rt in runtimes]
        pid = _policy(c)
        d = c.post(
            f"/v1/policies/{pid}/decisions",
            json={"state": STATE, "selector": "greedy"},
            headers=H | {"Idempotency-Key": "k"},
        ).json()
    c.app.state.db.dispose()
    with TestClient(app_factory(db_url)) as c2:
        after = [c2.get(f"/v1/sessions/{sid}", headers=H).json() for sid in sids]
        for b, a in zip(before, after, strict=True):
            assert a["state"] == b["state"] and a["feedback"] == b["feedback"] == 6
        assert (
            c2.post(
                f"/v1/policies/{pid}/decisions",
                json={"state": STATE, "selector": "greedy"},
                headers=H | {"Idempotency-Key": "k"},
            ).json()
            == d
        )
        # the generator state is restored too: the next selection is the one the old process would have made
        assert [c2.post(f"/v1/sessions/{sid}/select", json={}, headers=H).json()["action"] for sid in sids] == nxt
    c2.app.state.db.dispose()


def test_worker_processes_share_sessions(app_factory, db_url, tmp_path):
    """Two apps on one database stand for two worker processes: selections and feedback spread over both give
    exactly the selections, round numbers and learnt state of one process serving everything."""

    def play(clients: list[TestClient], sids: list[str]) -> list[list]:
        seen = []
        for i in range(14):
            sid = sids[i % len(sids)]
            a, b = clients[i % len(clients)], clients[(i // 3) % len(clients)]
            sel = a.post(f"/v1/sessions/{sid}/select", json={}, headers=H).json()
            seen.append([sel["action"], sel["round"]])
            b.post(
                f"/v1/sessions/{sid}/decisions/{sel['id']}/feedback",
                json={"reward": 0.05 * i} if i % 2 else {"rewards": [0.9 if x else None for x in sel["action"]]},
                headers=H,
            ).raise_for_status()
        states = [[c.get(f"/v1/sessions/{sid}", headers=H).json() for sid in sids] for c in clients]
        return seen, states

    with TestClient(app_factory(f"sqlite:///{tmp_path / 'one.db'}")) as one:
        want_seen, (want_states,) = play([one], [_cucb(one), _cucb(one, 8, 3, "thompson")])
    with TestClient(app_factory(db_url)) as a, TestClient(app_factory(db_url)) as b:
        seen, states = play([a, b], [_cucb(a), _cucb(b, 8, 3, "thompson")])
    assert seen == want_seen
    for got in states:  # both processes report the same, complete state
        for g, w in zip(got, want_states, strict=True):
            assert (g["state"], g["selections"], g["feedback"]) == (w["state"], w["selections"], w["feedback"])
    for c in (a, b):
        c.app.state.db.dispose()


def test_scalar_feedback_split():
    import numpy as np

    from bandits.combinatorial.scalar_feedback import ScalarFeedback

    s = ScalarFeedback(4, learning_rate=1.0)
    out = s.split([1, 1, 0, 0], 1.0)
    assert np.allclose(out[:2], 0.5) and np.isnan(out[2:]).all()
    out = s.split([1, 0, 1, 0], 2.0)
    assert np.isclose(np.nansum(out), 2.0) and np.isclose(out[0], 0.5 + 0.75)
    meta, arrays = s.get_state()
    s2 = ScalarFeedback.from_state(meta, arrays)
    assert np.allclose(s2.theta, s.theta) and s2.updates == 2


def test_knapsack_thompson_session(client):
    body = {
        "kind": "thompson",
        "n_arms": 5,
        "constraint": {"type": "knapsack", "sizes": [2, 3, 1, 4, 2], "capacity": 5},
        "seed": 1,
    }
    sid = client.post("/v1/sessions", json=body, headers=H).json()["id"]
    for _ in range(3):
        sel = client.post(f"/v1/sessions/{sid}/select", json={}, headers=H).json()
        assert sum(s for s, a in zip([2, 3, 1, 4, 2], sel["action"], strict=True) if a) <= 5
        r = client.post(f"/v1/sessions/{sid}/decisions/{sel['id']}/feedback", json={"reward": 0.9}, headers=H)
        assert r.status_code == 201, r.text
    bad = body | {"constraint": {"type": "knapsack", "sizes": [1, 2], "capacity": 5}}
    _err(client.post("/v1/sessions", json=bad, headers=H), 422)


def test_group_commit_writer_numbers_and_stores_every_selection(db_url):
    """Selections queued from many threads are committed in batches: per session the rounds are exactly
    0..n-1, every acknowledged selection is stored, a failing answer fails only its batch (nothing of it is
    stored), and an unknown session is a 404 for its callers alone."""
    import threading

    import sqlalchemy as sa

    from api.service.db import open_database, selections, sessions
    from api.service.errors import ApiError
    from api.service.selection_log import GroupCommitWriter, selection_row

    db = open_database(db_url)
    with db.main.begin() as conn:
        for sid in ("a", "b"):
            conn.execute(sessions.insert().values(id=sid, kind="whittle", config={}, cache=None, created_at=0.0))
    writer = GroupCommitWriter(db.log, max_batch=8)
    answers, lock = [], threading.Lock()

    def submit(i: int) -> None:
        sid = "ab"[i % 2]

        def finish(round_: int):
            out = {"id": f"s{i}", "round": round_}
            return out, selection_row(f"s{i}", sid, {"i": i}, out, None, 0.0)

        out = writer.submit(sid, finish)
        with lock:
            answers.append((sid, out["round"]))

    threads = [threading.Thread(target=lambda k=k: [submit(8 * k + j) for j in range(8)]) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sid in "ab":
        assert sorted(r for s, r in answers if s == sid) == list(range(24))

    def bad(round_: int):
        raise RuntimeError("broken answer")

    with pytest.raises(RuntimeError, match="broken answer"):
        writer.submit("a", bad)
    with pytest.raises(ApiError) as err:
        writer.submit("nope", lambda r: ({"round": r}, selection_row("x", "nope", {}, {}, None, 0.0)))
    assert err.value.status == 404
    writer.close()
    with db.read.connect() as conn:
        stored = conn.execute(
            sa.select(selections.c.session_id, sa.func.count()).group_by(selections.c.session_id)
        ).all()
        counters = dict(conn.execute(sa.select(sessions.c.id, sessions.c.n_selections)).all())
    assert dict(stored) == {"a": 24, "b": 24} and counters == {"a": 24, "b": 24}
    db.dispose()
