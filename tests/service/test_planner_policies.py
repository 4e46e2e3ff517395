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
        ({**BODY, "planner": "lp_update", "options": {"rounding": "coin"}}, "rounding"),
        ({**BODY, "planner": "lp_update", "options": {"warm_start": "no"}}, "warm_start"),
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
