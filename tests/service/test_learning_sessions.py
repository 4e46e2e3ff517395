"""Issue 17, item 4: a restless session that starts from a log's pooled Dirichlet posterior and learns from every
feedback (the decision's arm states, its action, the feedback's next states), re-planning each selection."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from fastapi.testclient import TestClient

from bandits.restless.learning import LearningWhittlePolicy
from scenarios.estimation import Pooling, estimate_dynamics, simulate_log, synthetic_programme
from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}
N, HORIZON = 30, 10
PROGRAMME = synthetic_programme(n_arms=N, n_states=3, n_actions=2, n_clusters=3, seed=0)
REWARDS = np.tile([0.0, 0.5, 1.0], (N, 1))


def _log_posterior():
    log = simulate_log(PROGRAMME.transitions, 1000, np.random.default_rng(0), arm_weights=PROGRAMME.arm_weights)
    return estimate_dynamics(log, pooling=Pooling(clusters=PROGRAMME.clusters))


def _create(c: TestClient, method: str = "thompson", **extra) -> str:
    posterior = _log_posterior().to_dict()
    body = {
        "kind": "learning_whittle",
        "posterior": {k: posterior[k] for k in ("counts", "prior_strength", "pooling")},
        "arrival_rewards": REWARDS.tolist(),
        "budget": 5,
        "horizon": HORIZON,
        "method": method,
        "seed": 3,
        **extra,
    }
    res = c.post("/v1/sessions", json=body, headers=H)
    assert res.status_code == 201, res.text
    return res.json()["id"]


def _step(c: TestClient, sid: str, states: np.ndarray, ttg: int, rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """One select and its feedback; returns (action, next states) drawn from the true dynamics."""
    sel = c.post(f"/v1/sessions/{sid}/select", json={"states": states.tolist(), "time_to_go": ttg}, headers=H)
    assert sel.status_code == 201, sel.text
    action = np.asarray(sel.json()["action"])
    P = PROGRAMME.transitions[np.arange(N), action, states]
    nxt = (rng.random(N)[:, None] > np.cumsum(P, axis=1)).sum(1).clip(0, 2)
    fb = c.post(
        f"/v1/sessions/{sid}/decisions/{sel.json()['id']}/feedback",
        json={"reward": float(REWARDS[np.arange(N), nxt].sum()), "next_states": nxt.tolist()},
        headers=H,
    )
    assert fb.status_code == 201, fb.text
    return sel.json()["action"], nxt


@pytest.fixture
def client(app_factory, tmp_path):
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        yield c


def test_feedback_updates_the_pooled_posterior_and_the_plan(client):
    sid = _create(client, method="ucb", bonus=0.0)  # the posterior mean's Whittle indices
    rng = np.random.default_rng(1)
    states = np.zeros(N, dtype=np.int64)
    expected = _log_posterior().counts.copy()
    for t in range(4):
        action, nxt = _step(client, sid, states, HORIZON - t, rng)
        np.add.at(expected, (np.arange(N), np.asarray(action), states, nxt), 1.0)
        states = nxt
    info = client.get(f"/v1/sessions/{sid}", headers=H).json()
    assert info["feedback"] == 4 and info["state"]["feedback_records"] == 4 * N
    assert info["state"]["log_records"] == 1000 and len(info["state"]["pool_strengths"]) == 3
    assert "counts" not in info["config"]["posterior"]  # the counts are not echoed back
    posterior = client.app.state.sessions.runtime(sid).policy.posterior
    np.testing.assert_array_equal(posterior.counts, expected)
    # the session's posterior is the library's: estimate_dynamics on all the records, pooling re-estimated
    reference = estimate_dynamics(expected, pooling=Pooling(clusters=PROGRAMME.clusters))
    np.testing.assert_allclose(posterior.alpha, reference.alpha)
    np.testing.assert_allclose(posterior.pool_strengths, reference.pool_strengths)
    # and the next selection is the Whittle allocation of that posterior's mean
    library = LearningWhittlePolicy(REWARDS, 5, horizon=HORIZON, method="ucb", bonus=0.0, posterior=reference)
    sel = client.post(f"/v1/sessions/{sid}/select", json={"states": states.tolist(), "time_to_go": 5}, headers=H)
    assert sel.json()["action"] == library.select(states, 5).tolist()
    # learning moved the plan: the log-only posterior's indices differ from the updated ones
    log_only = LearningWhittlePolicy(REWARDS, 5, horizon=HORIZON, method="ucb", bonus=0.0, posterior=_log_posterior())
    assert not np.allclose(log_only.scores(states, 5), library.scores(states, 5))


def test_learning_session_survives_restart(app_factory, tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    rng = np.random.default_rng(2)
    states = np.ones(N, dtype=np.int64)
    with TestClient(app_factory(url)) as c:
        sid = _create(c)  # Thompson sampling: the generator state is part of the session
        for t in range(3):
            _, states = _step(c, sid, states, HORIZON - t, rng)
        before = c.get(f"/v1/sessions/{sid}", headers=H).json()
        rt = c.app.state.sessions.runtime(sid)
        counts = rt.policy.counts.copy()
        nxt = copy.deepcopy(rt.policy).select(states, 7).tolist()
    c.app.state.db.dispose()
    with TestClient(app_factory(url)) as c2:
        after = c2.get(f"/v1/sessions/{sid}", headers=H).json()
        assert after["state"] == before["state"] and after["feedback"] == 3
        np.testing.assert_array_equal(c2.app.state.sessions.runtime(sid).policy.counts, counts)
        sel = c2.post(f"/v1/sessions/{sid}/select", json={"states": states.tolist(), "time_to_go": 7}, headers=H)
        assert sel.json()["action"] == nxt


def test_learning_session_bad_input(client):
    sid = _create(client)
    sel = client.post(f"/v1/sessions/{sid}/select", json={"states": [0] * N, "time_to_go": 3}, headers=H).json()
    url = f"/v1/sessions/{sid}/decisions/{sel['id']}/feedback"
    res = client.post(url, json={"reward": 1.0}, headers=H)
    assert res.status_code == 422 and res.json()["error"]["field"] == "next_states"
    res = client.post(url, json={"reward": 1.0, "next_states": [3] * N}, headers=H)
    assert res.status_code == 422 and res.json()["error"]["field"] == "next_states"
    assert client.get(f"/v1/sessions/{sid}", headers=H).json()["state"]["feedback_records"] == 0
    res = client.post(f"/v1/sessions/{sid}/select", json={"states": [0] * N}, headers=H)
    assert res.status_code == 422 and res.json()["error"]["field"] == "time_to_go"
    posterior = _log_posterior().to_dict()
    base = {"kind": "learning_whittle", "budget": 2, "arrival_rewards": REWARDS.tolist()}
    flat = {"counts": [[1.0, 2.0]]}
    assert client.post("/v1/sessions", json=base | {"posterior": flat}, headers=H).status_code == 422
    both = base | {"posterior": {"counts": posterior["counts"]}, "rewards": [[[0.0, 0.0]] * 3] * N}
    assert client.post("/v1/sessions", json=both, headers=H).status_code == 422
    wrong = base | {"posterior": {"counts": posterior["counts"], "pooling": {"clusters": [0, 1]}}}
    res = client.post("/v1/sessions", json=wrong, headers=H)
    assert res.status_code == 422 and "posterior.pooling.clusters" in res.json()["error"]["message"]


def test_library_policy_with_posterior_round_trips():
    """LearningWhittlePolicy's saved state keeps the pooled posterior (counts, prior strength, clusters)."""
    policy = LearningWhittlePolicy(REWARDS, 5, horizon=HORIZON, posterior=_log_posterior(), seed=4)
    states = np.zeros(N, dtype=np.int64)
    action = policy.select(states, HORIZON)
    policy.update(states, action, np.ones(N, dtype=np.int64))
    restored = LearningWhittlePolicy.from_state(*policy.get_state())
    assert restored.posterior is not None and policy.posterior is not None
    np.testing.assert_allclose(restored.posterior.alpha, policy.posterior.alpha)
    np.testing.assert_array_equal(restored.posterior.pooling.clusters, PROGRAMME.clusters)
    np.testing.assert_array_equal(restored.select(states, 3), policy.select(states, 3))
