"""The action-law planner: the Lagrangian index policy priced by the action-law LP (exact values on tiny instances)."""

from __future__ import annotations

import pytest

from engine.analysis.evaluation import method_names
from engine.analysis.exact_dp import exact_optimum
from engine.analysis.exact_policy import planner_policy_value
from engine.planners import make_planner
from engine.planners.action_law import applies
from engine.planners.prior import resolve_prior
from scenarios import make
from scenarios.cormab.overlapping_reach import OverlappingReachInstance
from scenarios.errors import InvalidInputError


@pytest.mark.parametrize(("seed", "lagrangian", "action_law"), [(0, 95.998, 99.504), (3, 96.021, 97.549)])
def test_beats_the_lagrangian_planner_where_the_response_is_a_sigmoid(
    seed: int, lagrangian: float, action_law: float
) -> None:
    """J = 6 overlapping reach, exact DP policy evaluation: the per-unit price of the occupancy LP cannot tell one
    intervention from two; the action law's per-value prices can (measured: 96.0 -> 99.5 and 96.0 -> 97.5%)."""
    instance = OverlappingReachInstance.generate(n_arms=6, budget=4, seed=seed)
    exact = exact_optimum(instance)
    values = {name: 100 * planner_policy_value(make_planner(name, instance), exact) / exact.value
              for name in ("lagrangian", "action_law")}  # fmt: skip
    assert values["lagrangian"] == pytest.approx(lagrangian, abs=0.01)
    assert values["action_law"] == pytest.approx(action_law, abs=0.01)
    planner = make_planner("action_law", instance)
    assert planner.converged and planner.bound >= exact.value


def test_options_are_checked_by_name() -> None:
    instance = OverlappingReachInstance.generate(n_arms=6, budget=4, seed=0)  # 70 feasible actions
    for bad in (0, -3, 2.5, True, "many", 200_001):
        with pytest.raises(InvalidInputError) as err:
            make_planner("action_law", instance, max_actions=bad)
        assert err.value.field == "max_actions"
    for bad in (0, -1.0, "soon", False):
        with pytest.raises(InvalidInputError) as err:
            make_planner("action_law", instance, fit_time_limit=bad)
        assert err.value.field == "fit_time_limit"
    with pytest.raises(InvalidInputError) as err:  # unconverged prices are refused, not used
        make_planner("action_law", instance, fit_time_limit=1e-6)
    assert err.value.field == "planner" and "did not converge" in str(err.value)
    with pytest.raises(InvalidInputError) as err:
        make_planner("action_law", instance, max_actions=10)
    assert err.value.field == "planner" and "lagrangian" in str(err.value)
    config = make_planner("action_law", instance, max_actions=70).config()
    assert config == {"name": "action_law", "max_actions": 70, "fit_time_limit": 600.0}


def test_auto_prior_and_methods_follow_the_feasible_set_size() -> None:
    small = OverlappingReachInstance.generate(n_arms=6, budget=4, seed=0)
    large = OverlappingReachInstance.generate(n_arms=30, budget=4, seed=0)  # C(40, 4) = 91,390 actions
    assert applies(small) and not applies(large)
    assert resolve_prior("auto", small) == "action_law"
    assert resolve_prior("auto", large) == "lagrangian"
    assert "action_law" in method_names(small)
    assert "action_law" not in method_names(large)
    capacity = make("capacity", n_arms=5, budget=2, seed=0).instance
    assert resolve_prior("auto", capacity) == "whittle"  # arm-pull domains keep their measured prior


def test_training_stores_the_concrete_prior_and_old_auto_checkpoints_keep_theirs(tmp_path) -> None:
    """A checkpoint that stored "auto" before the action-law planner existed was trained against Lagrangian on
    overlapping_reach: it loads with that prior; new training stores the concrete name."""
    from engine import DQNConfig, Engine
    from engine.engine import train_dqn

    env = make("overlapping_reach", n_arms=4, budget=2, seed=0, horizon=4)
    engine = train_dqn(env, DQNConfig(episodes=2, prior="auto"), seed=0, progress=False)
    assert engine.config.prior == "action_law"
    engine.save(tmp_path / "new")
    assert Engine.load(tmp_path / "new").prior.planner.name == "action_law"
    legacy = Engine(env.scenario, env.instance, engine.network, DQNConfig(episodes=2, prior="auto"))
    legacy.save(tmp_path / "old")
    assert Engine.load(tmp_path / "old").prior.planner.name == "lagrangian"
