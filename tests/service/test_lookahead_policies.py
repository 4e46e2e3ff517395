"""Lookahead policies over REST: a saved checkpoint registers like any policy and decides like the library."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import ADMIN

HEADERS = {"X-API-Key": ADMIN}


def test_a_lookahead_checkpoint_is_served_like_the_library(app_factory, policy_dir, tmp_path):
    from engine.lookahead import LookaheadConfig, train_lookahead
    from scenarios import make

    instance = make("coverage", n_arms=4, budget=2, seed=1, horizon=6).instance
    cfg = LookaheadConfig(planner="whittle", rollout_episodes=20, epochs=3, sweeps=1, samples=4, validation_episodes=0)
    policy = train_lookahead("coverage", instance, cfg, seed=0, progress=False)
    policy.save(policy_dir / "look_cov4")
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as client:
        r = client.post("/v1/policies", json={"path": "look_cov4"}, headers=HEADERS)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["kind"] == "lookahead" and body["policy_version"] == policy.policy_version
        for s in np.random.default_rng(0).integers(0, 4, (3, 4)):
            state = [*map(int, s), 4]
            d = client.post(f"/v1/policies/{body['id']}/decisions", json={"state": state}, headers=HEADERS)
            assert d.status_code == 201, d.text
            assert d.json()["action"] == policy.decide(state).action.tolist()
            assert d.json()["status"] == "optimal" and d.json()["selector"] == "lookahead"  # every action scored
            assert d.json()["bound"] == pytest.approx(d.json()["value"]) and d.json()["gap"] == 0.0
        bad = client.post(
            f"/v1/policies/{body['id']}/decisions", json={"state": [0, 0, 0, 0, 4], "selector": "mip"}, headers=HEADERS
        )
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "selector"
        batch = client.post(
            f"/v1/policies/{body['id']}/decisions/batch", json={"states": [[0, 1, 2, 3, 4], [3, 2, 1, 0, 2]]},
            headers=HEADERS,
        )  # fmt: skip
        assert batch.status_code in (200, 201), batch.text
