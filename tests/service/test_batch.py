"""Batch decisions: one Decision per state, idempotent as a whole, bounded, validated before deciding."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}
STATE = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 20]
OTHER = [3, 3, 0, 0, 1, 1, 2, 2, 0, 1, 7]


@pytest.fixture
def client(app_factory, db_url):
    with TestClient(app_factory(db_url, max_batch_states=5)) as c:
        yield c


def _policy(c: TestClient) -> str:
    r = c.post("/v1/policies", json={"path": "cap10"}, headers=H)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _err(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text
    return r.json()["error"]


def test_batch_answers_each_state_like_the_single_route(client):
    pid = _policy(client)
    r = client.post(
        f"/v1/policies/{pid}/decisions/batch", json={"states": [STATE, OTHER, STATE], "selector": "auto"}, headers=H
    )
    assert r.status_code == 201, r.text
    batch = r.json()
    assert set(batch) == {"id", "policy_id", "decisions", "created_at"} and batch["policy_id"] == pid
    assert len(batch["decisions"]) == 3 and len({d["id"] for d in batch["decisions"]}) == 3
    for state, d in zip([STATE, OTHER, STATE], batch["decisions"], strict=True):
        single = client.post(
            f"/v1/policies/{pid}/decisions", json={"state": state, "selector": "auto"}, headers=H
        ).json()
        assert set(d) == set(single)
        assert d["action"] == single["action"] and d["status"] == single["status"] == "optimal"
        assert client.get(f"/v1/decisions/{d['id']}", headers=H).json() == d  # each logged on its own


def test_batch_idempotency_key_replays_the_whole_answer(client):
    pid = _policy(client)
    k = H | {"Idempotency-Key": "batch-1"}
    body = {"states": [STATE, OTHER], "selector": "greedy"}
    first = client.post(f"/v1/policies/{pid}/decisions/batch", json=body, headers=k)
    again = client.post(f"/v1/policies/{pid}/decisions/batch", json=body, headers=k)
    assert first.status_code == 201 and again.status_code == 200, (first.text, again.text)
    assert again.json() == first.json()
    _err(
        client.post(f"/v1/policies/{pid}/decisions/batch", json={"states": [OTHER, STATE]}, headers=k),
        422,
        "idempotency_key_reused",
    )
    # the key space is the batch route's own: the single route with that key decides afresh
    single = client.post(f"/v1/policies/{pid}/decisions", json={"state": STATE}, headers=k)
    assert single.status_code == 201
    from api.service.db import decision_batches, decisions

    with client.app.state.db.read.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(decision_batches)).scalar_one() == 1
        assert conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one() == 3


def test_batch_is_bounded_and_validated_before_deciding(client):
    pid = _policy(client)
    err = _err(
        client.post(f"/v1/policies/{pid}/decisions/batch", json={"states": [STATE] * 6}, headers=H),
        422,
        "too_many_states",
    )
    assert err["field"] == "states" and "5" in err["message"]
    _err(client.post(f"/v1/policies/{pid}/decisions/batch", json={"states": []}, headers=H), 422, "invalid_input")
    err = _err(
        client.post(f"/v1/policies/{pid}/decisions/batch", json={"states": [STATE, [9] * 11]}, headers=H),
        422,
        "invalid_input",
    )
    assert err["field"] == "states.1"
    from api.service.db import decisions

    with client.app.state.db.read.connect() as conn:  # nothing decided: the bad state was seen first
        assert conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one() == 0
    _err(client.post("/v1/policies/nope/decisions/batch", json={"states": [STATE]}, headers=H), 404, "not_found")
    read = client.post("/v1/keys", json={"name": "r", "scopes": ["read"]}, headers=H).json()["key"]
    _err(
        client.post(f"/v1/policies/{pid}/decisions/batch", json={"states": [STATE]}, headers={"X-API-Key": read}),
        403,
        "forbidden",
    )


def test_batch_deadline_covers_the_whole_batch(client):
    pid = _policy(client)
    service = client.app.state.batch_decisions
    out, replayed = service.decide(
        pid,
        {"states": [STATE, OTHER], "selector": "mip", "deadline_seconds": 0.05},
        None,
        received=time.perf_counter() - 1.0,
    )
    assert not replayed
    assert all(d["deadline_hit"] and d["selector"] == "greedy" for d in out["decisions"])
    r = client.post(f"/v1/policies/{pid}/decisions/batch", json={"states": [STATE], "deadline_seconds": 5}, headers=H)
    assert r.status_code == 201 and not r.json()["decisions"][0]["deadline_hit"]
    # without a deadline the whole batch still gets at most max_decision_seconds
    client.app.state.decisions.max_seconds = 0.05
    out, _ = service.decide(pid, {"states": [STATE] * 3, "selector": "mip"}, None, received=time.perf_counter() - 0.06)
    assert all(d["deadline_hit"] and d["selector"] == "greedy" for d in out["decisions"])


def test_batch_passes_the_keys_work_budget_to_each_decision(client, monkeypatch):
    pid = _policy(client)
    seen = []
    real = client.app.state.decisions.decide

    def spy(*args, **kwargs):
        seen.append(kwargs.get("max_seconds"))
        return real(*args, **kwargs)

    monkeypatch.setattr(client.app.state.decisions, "decide", spy)
    r = client.post(f"/v1/policies/{pid}/decisions/batch", json={"states": [STATE, OTHER]}, headers=H)
    assert r.status_code == 201, r.text
    settings = client.app.state.settings
    expected = (
        settings.work_budget(frozenset({"admin", "decide", "read"})) if hasattr(settings, "work_budget") else None
    )
    assert seen == [expected, expected]


@pytest.mark.parametrize(("kind", "selector"), [("planner", "mip"), ("dqn", "greedy")])
def test_a_vectorised_batch_is_one_call_with_the_single_routes_answers(client, monkeypatch, kind, selector):
    """A policy that decides a selector's batches at once gets one ``decide_batch`` call (no per-state decide),
    every answer equal to the single route's and logged as its own decision."""
    if kind == "planner":
        body = {"scenario": "capacity", "planner": "whittle", "n_arms": 10, "budget": 3, "seed": 0}
        pid = client.post("/v1/planners", json=body, headers=H).json()["id"]
    else:
        pid = _policy(client)
    singles = []
    real_decide = client.app.state.decisions.decide

    def single_spy(*args, **kwargs):
        singles.append(args)
        return real_decide(*args, **kwargs)

    monkeypatch.setattr(client.app.state.decisions, "decide", single_spy)
    states = [STATE, OTHER, [1, 0, 3, 2, 2, 1, 0, 3, 3, 0, 4], STATE, [2] * 10 + [1]]
    r = client.post(f"/v1/policies/{pid}/decisions/batch", json={"states": states, "selector": selector}, headers=H)
    assert r.status_code == 201, r.text
    assert singles == []  # decided at once
    out = r.json()["decisions"]
    monkeypatch.undo()
    for state, d in zip(states, out, strict=True):
        single = client.post(f"/v1/policies/{pid}/decisions", json={"state": state, "selector": selector}, headers=H)
        assert d["action"] == single.json()["action"] and d["status"] == single.json()["status"]
        assert set(d) == set(single.json()) and not d["deadline_hit"]
        assert client.get(f"/v1/decisions/{d['id']}", headers=H).json() == d
