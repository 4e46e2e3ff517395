"""Instance inputs that were accepted with nonsense, or refused without naming the field (review of session 22),
and user rows that a deciding planner ignored. Each test failed before its fix."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios import make
from scenarios.errors import InvalidInputError


def _refused(name: str, body: dict) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as err:
        make(name, instance=body)
    return err.value


def test_user_rows_assigned_to_an_engine_reach_the_planner_that_decides():
    """``engine.model = engine.model.with_constraints(...)`` is documented to bind every selector; where training
    kept a planner, that planner decided over its own model and returned actions the rows forbid."""
    from engine import Engine
    from engine.planners.policy import PlannerPolicy
    from engine.sequoia.dqn import make_encoder
    from engine.sequoia.q_network import QNetwork

    env = make("capacity", n_arms=6, budget=2, seed=0)
    enc = make_encoder(env.instance)
    engine = Engine(
        "capacity",
        env.instance,
        QNetwork(6, enc.dim, (8,), enc.context_dim),
        training_summary={"kept_planner_name": "lagrangian"},
    )
    policy = PlannerPolicy("capacity", env.instance, "lagrangian")
    obs, _ = env.reset(seed=0)
    free = engine.decide(obs).action
    pair = [int(j) for j in np.flatnonzero(free)[:2]]
    assert len(pair) == 2
    for decider in (engine, policy):
        decider.model = decider.model.with_constraints(lambda m, p=pair: [m.a[p[0]] + m.a[p[1]] <= 1])
        d = decider.decide(obs)
        assert decider.model.is_feasible(d.action) and d.action[pair].sum() <= 1
        assert d.status == "optimal"  # the MILP over the new rows, not a repair of an answer that broke them


def test_a_patrol_position_arm_that_earns_is_refused():
    """The planners and the certified bound read the position arm as earning nothing: a reward there was paid by
    the environment and missing from the bound (9.74 against an optimum of 209.56)."""
    body = make("patrol", n_arms=4, budget=2, seed=0).instance.model_dump(mode="json")
    J = len(body["arms"]["transitions"]) - 1
    rewards = "arrival_rewards" if body["arms"].get("arrival_rewards") else "rewards"
    body["arms"][rewards][J] = np.full_like(np.asarray(body["arms"][rewards][J], dtype=float), 100.0).tolist()
    err = _refused("patrol", body)
    assert err.field.endswith(f"rewards[{J}]") and "position arm" in err.reason


def test_an_infinite_budget_is_refused_naming_it():
    body = make("budgeted", n_arms=3, budget=2, seed=0).instance.model_dump(mode="json")
    body["budget"] = float("inf")
    assert _refused("budgeted", body).field.endswith("budget")


@pytest.mark.parametrize(
    ("family", "change", "field"),
    [
        ("worker_budget", {"n_workers": 2.0}, "n_workers"),
        ("pull_limits", {"max_pulls": "two"}, "max_pulls"),
        ("switching", {"on_cost": None}, "on_cost"),
        ("patrol", {"start": "1"}, "start"),
    ],
)
def test_a_bad_family_field_beside_base_arms_is_named(family, change, field):
    """With ``base_arms`` the family's fields build the arms; a malformed one was reported as
    ``arms: Field required``."""
    instance = make(family, n_arms=4, budget=2, seed=0).instance
    body = instance.model_dump(mode="json")
    body.pop("arms")
    n_base = getattr(instance, "n_sites", None) or getattr(instance, "n_beneficiaries", None) or 4
    body["base_arms"] = instance.arms.subset(list(range(n_base))).model_dump(mode="json")
    if family in ("worker_budget", "pull_limits", "switching"):
        body["base_arms"] = instance.base_arms().model_dump(mode="json")
    for key, value in change.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    assert _refused(family, body).field.endswith(field)


def test_an_exact_budget_that_can_never_be_met_is_refused():
    body = make("budgeted", n_arms=3, budget=2, seed=0).instance.model_dump(mode="json")
    for limit in (5, 1.5):
        body["constraints"] = [{"kind": "budget", "limit": limit, "exact": True}]
        assert "limit" in _refused("budgeted", body).field


def test_an_auxiliary_variable_must_be_bounded_so_the_instance_reloads():
    body = make("budgeted", n_arms=3, budget=2, seed=0).instance.model_dump(mode="json")
    body["constraints"] = [
        {
            "kind": "linear",
            "rows": [{"terms": {"a[0]": 1.0, "z": -1.0}, "sense": "<=", "rhs": 0.0}],
            "variables": [{"name": "z", "lower": 0.0, "upper": float("inf")}],
        }
    ]
    assert "upper" in _refused("budgeted", body).field


def test_user_rows_that_shut_out_the_empty_action_are_not_taken_as_downward_closed():
    model = make("budgeted", n_arms=3, budget=2).action_model().with_constraints(lambda m: [m.a[0] + m.a[1] <= -1])
    assert not model.downward_closed
    assert all(model.is_feasible(a) for a in model.enumerate()) and len(model.enumerate()) == 0


@pytest.mark.parametrize("ttg", [0, -2, 99, 2.7, "abc", True])
def test_reset_refuses_a_time_to_go_outside_the_horizon(ttg):
    env = make("capacity", n_arms=4, budget=2, seed=0, horizon=10)
    with pytest.raises(InvalidInputError) as err:
        env.reset(seed=0, options={"time_to_go": ttg})
    assert err.value.field == "time_to_go"
    obs, info = env.reset(seed=0, options={"time_to_go": 3})
    assert info["time_to_go"] == 3 and obs[-1] == 3
