"""Engine: selectors are feasible and exact where they claim to be; errors are clear; checkpoints round-trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine
from engine.baselines.cormab import BASELINES
from scenarios import InvalidInputError
from scenarios.cormab.instance import N_STATES

STATE = st.integers(0, 3)


def _state(env, arm_states, ttg):
    return np.array([*arm_states, ttg])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arm_states=st.lists(STATE, min_size=10, max_size=10), ttg=st.integers(1, 20))
def test_mip_argmax_equals_enumeration_on_a_trained_network(small_engine, small_env, arm_states, ttg):
    state = _state(small_env, arm_states, ttg)
    exact = small_engine.decide(state, selector="enumerate")
    mip = small_engine.decide(state, selector="mip")
    assert small_env.action_model().is_feasible(mip.action)
    # certified: the MILP's bound covers the true maximum and its value is within the requested gap
    assert mip.bound >= exact.value - 1e-4 * max(1.0, abs(exact.value))
    assert mip.value >= exact.value - 0.01 * abs(exact.value) - 1e-6
    assert mip.status == "optimal"


@pytest.mark.parametrize("arm_states", [[0] * 10, [3] * 10, [0, 3] * 5])
@pytest.mark.parametrize("ttg", [1, 20])
def test_extreme_states(small_engine, small_env, arm_states, ttg):
    state = _state(small_env, arm_states, ttg)
    exact = small_engine.decide(state, selector="enumerate")
    mip = small_engine.decide(state, selector="mip")
    assert mip.value == pytest.approx(exact.value, rel=0.011, abs=1e-6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arm_states=st.lists(STATE, min_size=10, max_size=10), ttg=st.integers(1, 20))
def test_every_selector_and_baseline_returns_a_feasible_action(small_engine, small_env, arm_states, ttg):
    model = small_env.action_model()
    state = _state(small_env, arm_states, ttg)
    for selector in ("mip", "enumerate", "greedy", "sampling", "auto"):
        decision = small_engine.decide(state, selector=selector)
        assert model.is_feasible(decision.action), selector
        assert decision.value == pytest.approx(float(small_engine.state_q(state).score(decision.action)[0]))
    rng = np.random.default_rng(0)
    for cls in BASELINES.values():
        assert model.is_feasible(cls(small_env.instance).act(np.array(arm_states), ttg, rng))


def test_greedy_is_never_better_than_exact(small_engine, small_env):
    rng = np.random.default_rng(0)
    for _ in range(10):
        state = [*rng.integers(0, N_STATES, 10), int(rng.integers(1, 21))]
        exact = small_engine.decide(state, "enumerate").value
        assert small_engine.decide(state, "greedy").value <= exact + 1e-6 * max(1.0, abs(exact))  # float32 scores


def test_myopic_baseline_maximises_the_one_step_expected_reward(small_env):
    inst = small_env.instance
    every = inst.action_model().enumerate()
    rng = np.random.default_rng(0)
    policy = BASELINES["myopic"](inst)
    for _ in range(5):
        states = rng.integers(0, N_STATES, inst.n_arms)
        best = inst.expected_reward(states, every).max()
        assert inst.expected_reward(states, policy.act(states, 5, rng)) == pytest.approx(best)


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ([0] * 3, "shape"),
        ([0] * 10 + [21], "time-to-go"),
        ([0] * 10 + [0], "time-to-go"),
        ([4] + [0] * 9 + [5], r"outside \[0, 3\]"),
        ([float("nan")] * 11, "NaN"),
        ([0.5] * 11, "integers"),
        ("abc", "shape|numbers"),
    ],
)
def test_malformed_state_names_the_field(small_engine, state, match):
    with pytest.raises(InvalidInputError, match=match) as err:
        small_engine.decide(state)
    assert err.value.field == "state"


def test_bad_selector_and_time_limit(small_engine):
    with pytest.raises(InvalidInputError) as err:
        small_engine.decide([0] * 10, selector="nope")
    assert err.value.field == "selector"
    with pytest.raises(InvalidInputError) as err:
        small_engine.decide([0] * 10, time_limit=-1)
    assert err.value.field == "time_limit"


def test_time_limit_still_returns_a_flagged_feasible_decision(small_engine, small_env):
    decision = small_engine.decide([1] * 10 + [10], selector="mip", time_limit=1e-4)
    assert small_env.action_model().is_feasible(decision.action)
    assert decision.status in ("optimal", "time_limit", "heuristic")
    assert decision.bound >= decision.value - 1e-9


def test_checkpoint_round_trip_gives_identical_decisions(small_engine, tmp_path):
    small_engine.save(tmp_path / "policy")
    loaded = Engine.load(tmp_path / "policy")
    assert loaded.policy_version == small_engine.policy_version
    assert loaded.instance == small_engine.instance
    rng = np.random.default_rng(3)
    for _ in range(5):
        state = [*rng.integers(0, N_STATES, 10), int(rng.integers(1, 21))]
        for selector in ("mip", "greedy"):
            a, b = small_engine.decide(state, selector), loaded.decide(state, selector)
            assert np.array_equal(a.action, b.action) and a.value == pytest.approx(b.value)
    small_engine.save(tmp_path / "policy")  # overwriting an existing checkpoint is atomic
    assert sorted(p.name for p in (tmp_path / "policy").iterdir()) == ["config.json", "weights.safetensors"]


def test_load_rejects_a_directory_that_is_not_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError):
        Engine.load(tmp_path)


def test_decision_serialises(small_engine):
    d = small_engine.decide([0] * 10).to_dict()
    keys = {"action", "value", "bound", "gap", "status", "seconds", "selector", "policy_version", "reason"}
    assert set(d) == keys | {"assignment"}
    assert all(v in (0, 1) for v in d["action"])


def test_batched_candidate_scoring_equals_the_plain_forward_pass():
    import torch

    from engine.sequoia.q_network import QNetwork

    torch.manual_seed(0)
    net = QNetwork(6, 25, (8, 4), context_dim=5)
    b, k = 3, 7
    cands = torch.randint(0, 2, (b, k, 6)).float()
    feats, ctx = torch.randn(b, 25), torch.randn(b, 6, 5)
    full = net(cands.reshape(b * k, 6), feats.repeat_interleave(k, 0), ctx.repeat_interleave(k, 0)).reshape(b, k)
    assert torch.allclose(full, net.candidate_values(cands, feats, ctx), atol=1e-5)


def test_first_layer_of_a_state_reproduces_the_network(small_engine):
    rng = np.random.default_rng(0)
    state = [*rng.integers(0, N_STATES, 10), 7]
    q = small_engine.state_q(state)
    actions = small_engine.model.enumerate()[:50]
    relu = q.relu_network()
    relu.weights[0] = q.first_weights
    prior = actions @ q.linear + q.offset if q.linear is not None else 0.0
    assert np.allclose(relu.forward(actions, q.first_bias) + prior, q.score(actions), atol=1e-4)


def test_selector_caches_follow_identity_not_memory_addresses():
    """Two networks at the same weight version on one model, one MIP selector: each gets its own argmax (the
    compiled MILP is keyed on the network's uid); copies and unpickled models are new identities."""
    import copy
    import pickle

    import torch

    from engine.sequoia.dqn import DQNConfig, DQNTrainer, make_state_q
    from engine.sequoia.selectors.enumerate import EnumerateSelector
    from engine.sequoia.selectors.mip import MipSelector
    from scenarios import make

    env = make("capacity", n_arms=6, budget=2, seed=0)
    trainer = DQNTrainer(env.instance, DQNConfig(prior="none"), seed=0)
    nets = [trainer.net, copy.deepcopy(trainer.net)]
    assert nets[0].uid != nets[1].uid
    torch.manual_seed(5)
    with torch.no_grad():
        for p in nets[1].parameters():
            p.normal_(0.0, 1.0)
    model = trainer.model
    assert pickle.loads(pickle.dumps(model)).uid != model.uid
    selector = MipSelector(oracle=False)
    obs, _ = env.reset(seed=1)
    for net in nets:
        q = make_state_q(model, net, trainer.encoder, None, obs[:-1], int(obs[-1]), version=0)
        assert selector.select(q).value == pytest.approx(EnumerateSelector().select(q).value, rel=1e-5, abs=1e-5)


def test_sampling_decides_a_state_the_same_way_whatever_came_before(small_engine, small_env):
    """Its samples are seeded by the selector's seed and the state, so replays and repeated requests agree."""
    rng = np.random.default_rng(4)
    states = [[*rng.integers(0, N_STATES, 10), int(rng.integers(1, 21))] for _ in range(3)]
    first = [small_engine.decide(s, "sampling", n_samples=3).action for s in states]
    for s in reversed(states[1:]):  # other decisions in between
        small_engine.decide(s, "sampling", n_samples=3)
    again = [small_engine.decide(s, "sampling", n_samples=3).action for s in states]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    for bad in ({"n_samples": 0}, {"n_samples": -3}, {"seed": -1}):
        with pytest.raises(InvalidInputError) as err:
            small_engine.decide(states[0], "sampling", **bad)
        assert err.value.field == "options"
