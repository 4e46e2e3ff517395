"""Planner policies over REST: created without training, decided through the decision route, idempotent."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import ADMIN

HEADERS = {"X-API-Key": ADMIN}
BODY = {"scenario": "capacity", "planner": "whittle", "n_arms": 8, "budget": 2, "seed": 3}


@pytest.fixture
def client(app_factory, tmp_path):
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        yield c


def test_a_planner_policy_decides_like_the_library(client):
    from engine import Engine
    from scenarios import make

    r = client.post("/v1/planners", json=BODY, headers=HEADERS)
    assert r.status_code == 201, r.text
    policy = r.json()
    assert policy["kind"] == "planner" and policy["planner"] == {"name": "whittle"} and policy["network"] is None
    again = client.post("/v1/planners", json=BODY, headers=HEADERS)
    assert again.status_code == 200 and again.json()["id"] == policy["id"]
    listed = client.get("/v1/policies", headers=HEADERS).json()["policies"]
    assert [p["id"] for p in listed].count(policy["id"]) == 1
    library = Engine.plan(make("capacity", n_arms=8, budget=2, seed=3), "whittle")
    for s in np.random.default_rng(0).integers(0, 4, (4, 8)):
        state = [*map(int, s), 5]
        d = client.post(f"/v1/policies/{policy['id']}/decisions", json={"state": state}, headers=HEADERS)
        assert d.status_code == 201, d.text
        want = library.decide(state)
        assert d.json()["action"] == want.action.tolist()
        assert d.json()["status"] == "optimal" and d.json()["bound"] is not None
        assert d.json()["reason"] == want.reason  # which path answered, as in the library


def test_lp_update_options_reach_the_planner(client):
    body = {**BODY, "planner": "lp_update", "options": {"warm_start": False}}
    r = client.post("/v1/planners", json=body, headers=HEADERS)
    assert r.status_code == 201, r.text
    assert r.json()["planner"] == {"name": "lp_update", "rounding": "duals", "warm_start": False}
    d = client.post(f"/v1/policies/{r.json()['id']}/decisions", json={"state": [0] * 8 + [3]}, headers=HEADERS)
    assert d.status_code == 201, d.text


def test_a_decision_says_which_path_answered(client):
    body = {"scenario": "budgeted", "planner": "whittle", "n_arms": 8, "budget": 2, "seed": 1}
    policy = client.post("/v1/planners", json=body, headers=HEADERS).json()
    d = client.post(
        f"/v1/policies/{policy['id']}/decisions", json={"state": [0, 1, 2] * 2 + [0, 1, 5]}, headers=HEADERS
    )
    assert d.status_code == 201, d.text
    assert d.json()["reason"] == "exact budget oracle" and d.json()["status"] == "optimal"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "planner": "oracle"}, "planner"),
        ({**BODY, "scenario": "nowhere"}, "scenario"),
        ({"scenario": "multi_intervention", "planner": "whittle", "n_arms": 6, "budget": 2}, "planner"),
        ({"scenario": "inventory", "planner": "lagrangian"}, "scenario"),
        ({**BODY, "n_arms": 100_000}, "n_arms"),
        ({**BODY, "planner": "lp_update", "options": {"rounding": "coin"}}, "options.rounding"),
        ({**BODY, "planner": "lp_update", "options": {"warm_start": "no"}}, "options.warm_start"),
        ({"scenario": "capacity", "planner": "whittle", "instance": {"arms": 1}, "n_arms": 5}, "n_arms"),
    ],
)
def test_bad_planner_requests_are_422_naming_the_field(client, body, field):
    r = client.post("/v1/planners", json=body, headers=HEADERS)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_planner_policies_refuse_selectors_they_do_not_offer(client):
    pid = client.post("/v1/planners", json=BODY, headers=HEADERS).json()["id"]
    r = client.post(
        f"/v1/policies/{pid}/decisions", json={"state": [0] * 8 + [3], "selector": "enumerate"}, headers=HEADERS
    )
    assert r.status_code == 422 and r.json()["error"]["field"] == "selector"


def test_reserved_and_mistyped_planner_options_are_refused_not_500(client):
    for options in ({"name": "x"}, {"mip_rel_gap": "tight"}):
        r = client.post("/v1/planners", json={**BODY, "options": options}, headers=HEADERS)
        assert r.status_code == 422, (options, r.text)
        assert r.json()["error"]["field"] in ("options", *(f"options.{k}" for k in options))


def test_identical_concurrent_planner_requests_all_get_the_one_policy(client):
    """The checkpoint is content-addressed and written once: concurrent identical requests never see it
    half-swapped (a 500, 404 or 422 before) and all get the same policy."""
    from concurrent.futures import ThreadPoolExecutor

    body = {**BODY, "seed": 11}
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda _: client.post("/v1/planners", json=body, headers=HEADERS), range(12)))
    assert all(r.status_code in (200, 201) for r in replies), [r.text for r in replies if r.status_code >= 300]
    assert len({r.json()["id"] for r in replies}) == 1


def test_a_planners_own_time_limit_bounds_its_decisions(client, monkeypatch):
    from engine.planners.policy import PlannerPolicy

    seen: list[float | None] = []
    original = PlannerPolicy.decide

    def spy(self, state, selector="mip", time_limit=None):
        seen.append(time_limit)
        return original(self, state, selector, time_limit)

    monkeypatch.setattr(PlannerPolicy, "decide", spy)
    body = {**BODY, "planner": "lagrangian", "options": {"time_limit": 0.5}}
    policy = client.post("/v1/planners", json=body, headers=HEADERS).json()
    d = client.post(f"/v1/policies/{policy['id']}/decisions", json={"state": [0] * 8 + [3]}, headers=HEADERS)
    assert d.status_code == 201, d.text
    assert seen and max(t for t in seen if t is not None) <= 0.5


def test_an_unknown_selector_is_refused_whatever_the_deadline(client):
    policy = client.post("/v1/planners", json=BODY, headers=HEADERS).json()
    for extra in ({}, {"deadline_seconds": 1e-9}):
        d = client.post(
            f"/v1/policies/{policy['id']}/decisions",
            json={"state": [0] * 8 + [3], "selector": "zzz", **extra},
            headers=HEADERS,
        )
        assert d.status_code == 422 and d.json()["error"]["field"] == "selector", (extra, d.text)


def test_a_huge_worker_budget_is_refused_before_any_table_is_built(client):
    """calls_per_worker sizes each worker arm's tables ((calls + 1)^2 per action): a few bytes of body once asked
    the service for terabytes (a 500)."""
    from scenarios import make

    instance = make("worker_budget", n_arms=3, budget=1, seed=0).instance.model_dump(mode="json")
    base = {k: v for k, v in instance.items() if k != "arms"}
    base["base_arms"] = make("worker_budget", n_arms=3, budget=1, seed=0).instance.base_arms().model_dump(mode="json")
    for calls in (1_000_000, 10**12):
        body = {**base, "calls_per_worker": calls}
        r = client.post("/v1/scenarios/worker_budget/validate", json={"instance": body}, headers=HEADERS)
        assert r.status_code == 200 and r.json()["valid"] is False, r.text
        assert r.json()["error"]["field"].endswith("calls_per_worker") and "1000" in r.json()["error"]["message"]
        spec = {"scenario": "worker_budget", "planner": "lagrangian", "instance": body}
        r = client.post("/v1/planners", json=spec, headers=HEADERS)
        assert r.status_code == 422, r.text
