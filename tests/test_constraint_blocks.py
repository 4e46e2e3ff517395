"""Constraint blocks (scenarios/constraints): random compositions against enumeration, JSON round trips, user
blocks in instances (enforced by env.step, kept by checkpoints, accepted over REST) and assignment certificates."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scenarios import make
from scenarios.constraints import (
    BLOCKS,
    BudgetBlock,
    GroupCapBlock,
    InterventionsBlock,
    LinearBlock,
    RoutingBlock,
    SchedulingBlock,
    WorkerCapacityBlock,
    compose,
    parse_blocks,
)
from scenarios.errors import InfeasibleActionError, InvalidInputError
from solvers.backends.highs import HighsSolver

# --------------------------------------------------------------------------------------- random blocks

RARELY = st.sampled_from([False, False, False, True])  # exact counts and budgets: often empty with other blocks


@st.composite
def blocks_for(draw, n: int) -> list:
    """One to three random blocks over ``n`` action entries (kinds drawn from every registered block)."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(sorted(BLOCKS)))
        if kind == "budget":
            costs = draw(st.none() | st.lists(st.integers(0, 3).map(float), min_size=n, max_size=n))
            out.append(BudgetBlock(limit=draw(st.integers(1, n)), costs=costs, exact=draw(RARELY)))
        elif kind == "worker_capacity":
            out.append(
                WorkerCapacityBlock(
                    costs=draw(st.lists(st.integers(1, 4), min_size=n, max_size=n)),
                    capacities=draw(st.lists(st.integers(1, 8), min_size=1, max_size=4)),
                )
            )
        elif kind == "scheduling":
            S = draw(st.integers(2, 4))
            slots = st.lists(st.integers(0, S - 1), min_size=1, max_size=S, unique=True)
            out.append(
                SchedulingBlock(
                    n_slots=S,
                    arm_slots=draw(st.lists(slots, min_size=n, max_size=n)),
                    worker_slots=draw(st.lists(slots, min_size=1, max_size=4)),
                    assignments_per_pull=draw(st.integers(1, 2)),
                    budget=draw(st.none() | st.integers(0, n)),
                )
            )
        elif kind == "routing":
            pairs = [(u, v) for u in range(n) for v in range(u + 1, n)]
            edges = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=2 * n)) if pairs else []
            out.append(RoutingBlock(edges=edges, source=draw(st.integers(0, n - 1)), budget=draw(st.integers(1, 3))))
        elif kind == "interventions":
            J = draw(st.integers(1, 4))
            weights = draw(
                st.lists(st.lists(st.sampled_from([0.0, 3.0]), min_size=n, max_size=n), min_size=J, max_size=J)
            )
            limits = draw(st.none() | st.lists(st.integers(1, 2), min_size=J, max_size=J))
            out.append(
                InterventionsBlock(
                    weights=weights, count=draw(st.integers(1, n)), exact=draw(RARELY), arm_limits=limits
                )
            )
        elif kind == "group_cap":
            G = draw(st.integers(1, 3))
            out.append(
                GroupCapBlock(
                    groups=draw(st.lists(st.integers(-1, G - 1), min_size=n, max_size=n)),
                    caps=draw(st.lists(st.integers(0, 3), min_size=G, max_size=G).filter(any)),
                )
            )
        else:
            out.append(_random_linear(draw, n, out))
    return out


def _random_linear(draw, n: int, before: list) -> LinearBlock:
    """Rows over pulls, sometimes with an auxiliary variable of its own or a term on an earlier block's auxiliary."""
    terms = st.dictionaries(st.sampled_from([f"a[{j}]" for j in range(n)]), st.integers(-2, 2).map(float), min_size=1)
    rows = [
        {
            "terms": draw(terms),
            "sense": draw(st.sampled_from(["<=", "<=", "<=", ">=", "=="])),
            "rhs": float(draw(st.integers(-1, 3))),
        }
        for _ in range(draw(st.integers(1, 2)))
    ]
    variables = []
    if draw(st.booleans()):  # v counts pulls of entries 0 and 1 and is at most 1
        variables = [{"name": "v", "lower": 0, "upper": 2}]
        rows.append({"terms": {"a[0]": 1.0, f"a[{min(1, n - 1)}]": 1.0, "v": -1.0}, "sense": "<=", "rhs": 0.0})
        rows.append({"terms": {"v": 1.0}, "sense": "<=", "rhs": 1.0})
    others = [name for b in before for name in b.compile(n).aux_names]
    if others and n <= 7 and draw(st.booleans()):  # a term on an earlier block's auxiliary (e.g. x[0,0] == 0)
        rows.append(
            {"terms": {draw(st.sampled_from(others)): 1.0}, "sense": draw(st.sampled_from(["<=", "=="])), "rhs": 0.0}
        )
    return LinearBlock.model_validate({"rows": rows, "variables": variables})


def _rows_only(model):
    """The same rows without the oracle: every answer from HiGHS."""
    return dataclasses.replace(model, oracle=None, _cache={}, _solver=None)


def _all_actions(n: int) -> np.ndarray:
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.int64)


# ------------------------------------------------------------------------------- 1. compositions vs rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_compositions_milp_equals_enumeration_and_every_block_holds(data):
    n = data.draw(st.integers(2, 10))
    blocks = data.draw(blocks_for(n))
    model = compose(blocks, n)
    coupled = any(isinstance(b, LinearBlock) and b.external_names() for b in blocks)
    if coupled and n > 7:  # every answer is a HiGHS solve: keep 2^n of them small
        return
    feasible = model.enumerate()
    if n <= 6:  # the oracle (or the composition's HiGHS answers) agree with the rows, action by action
        rows = _rows_only(model)
        by_rows = np.array([rows.is_feasible(a) for a in _all_actions(n)])
        assert sorted(map(tuple, feasible.tolist())) == sorted(map(tuple, _all_actions(n)[by_rows].tolist()))
    if not coupled:  # independent blocks: feasible iff every block alone accepts
        alone = [b.compile(n) for b in blocks]
        each = np.array([all(m.is_feasible(a) for m in alone) for a in _all_actions(n)])
        assert sorted(map(tuple, feasible.tolist())) == sorted(map(tuple, _all_actions(n)[each].tolist()))
    w = data.draw(st.lists(st.integers(-5, 9).map(float), min_size=n, max_size=n))
    sol = HighsSolver(mip_rel_gap=1e-9).solve(model.milp(np.asarray(w)), time_limit=20.0)
    if feasible.shape[0] == 0:
        assert sol.x is None
        return
    best = float((feasible @ np.asarray(w)).max())
    a = np.round(sol.x[:n]).astype(np.int64)
    assert math.isclose(float(np.asarray(w) @ a), best, abs_tol=1e-6)
    assert model.is_feasible(a) and model.feasible_with(a, sol.x[n:])
    if not coupled:
        assert all(b.compile(n).is_feasible(a) for b in blocks)
    # a sample is feasible and the assignment is decoded from a certificate that satisfies the rows
    assert model.is_feasible(model.sample(np.random.default_rng(0)))
    aux = model.certificate(a)
    assert aux is not None and model.feasible_with(a, aux)
    assert json.loads(json.dumps(model.assignment(a, aux))) == model.assignment(a, aux)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_blocks_round_trip_through_json_exactly(data):
    n = data.draw(st.integers(2, 6))
    blocks = data.draw(blocks_for(n))
    text = json.dumps([b.model_dump(mode="json") for b in blocks])
    again = parse_blocks(json.loads(text))
    assert again == blocks
    assert json.dumps([b.model_dump(mode="json") for b in again]) == text
    assert compose(again, n).row_names == compose(blocks, n).row_names


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([{"kind": "group_cap", "groups": [0, 1], "caps": [1, -1]}], "constraints[0].caps[1]"),
        (
            [{"kind": "budget", "limit": 2}, {"kind": "worker_capacity", "costs": [0], "capacities": [3]}],
            "constraints[1].costs[0]",
        ),
        ([{"kind": "budget"}], "constraints[0].limit"),
        ([{"kind": "budget", "limit": 1, "colour": "red"}], "constraints[0].colour"),
        ([{"kind": "teleport"}], "constraints[0]"),
        ([{"kind": "routing", "edges": [[0, 0]], "budget": 1}], "constraints[0].edges[0]"),
        (
            [{"kind": "linear", "rows": [{"terms": {"a[0]": 1}, "sense": "<", "rhs": 1}]}],
            "constraints[0].rows[0].sense",
        ),
    ],
)
def test_bad_blocks_name_the_field(raw, field):
    with pytest.raises(ValueError) as err:
        parse_blocks(raw)
    assert str(err.value).split(": ")[0] == field


# ----------------------------------------------------------------------- 2. the domains are compositions


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("capacity", ["worker_capacity"]),
        ("scheduling", ["scheduling"]),
        ("routing", ["routing"]),
        ("multi_intervention", ["interventions"]),
        ("coverage", ["budget"]),
    ],
)
def test_benchmark_domains_are_compositions_of_blocks(name, kinds):
    env = make(name, n_arms=6, budget=2, seed=1)
    model = env.action_model()
    assert [b.kind for b in model.blocks] == kinds and model.name == name
    again = compose(model.blocks, model.n_actions, name)
    assert np.array_equal(again.A.toarray(), model.A.toarray()) and again.row_names == model.row_names
    assert sorted(map(tuple, again.enumerate().tolist())) == sorted(map(tuple, _rows_only(model).enumerate().tolist()))


# --------------------------------------------------------------------- 3. user blocks in every instance

GROUPS = {"kind": "group_cap", "groups": [0, 0, 0, 1, 1, 1], "caps": [1, 1]}
NOT_BOTH = {"kind": "linear", "rows": [{"terms": {"a[4]": 1, "a[5]": 1}, "sense": "<=", "rhs": 1, "name": "not_4_5"}]}


def _constrained(name: str = "capacity", blocks: list | None = None):
    base = make(name, n_arms=6, budget=3, seed=0).instance.model_dump(mode="json")
    return make(name, instance={**base, "constraints": [GROUPS, NOT_BOTH] if blocks is None else blocks})


def test_user_blocks_shrink_the_feasible_set_and_env_step_names_the_block():
    env = _constrained()
    free = make("capacity", n_arms=6, budget=3, seed=0).action_model().enumerate()
    model = env.action_model()
    kept = [a for a in free if a[:3].sum() <= 1 and a[3:].sum() <= 1 and a[4] + a[5] <= 1]
    assert sorted(map(tuple, model.enumerate().tolist())) == sorted(map(tuple, np.asarray(kept).tolist()))
    env.reset(seed=0)
    with pytest.raises(InfeasibleActionError) as err:
        env.step([1, 1, 0, 0, 0, 0])
    assert err.value.violations == ["constraints[0]:group_cap[0]"]
    with pytest.raises(InfeasibleActionError) as err:
        env.step([0, 0, 0, 0, 1, 1])
    assert "constraints[1]:not_4_5" in err.value.violations


@pytest.mark.parametrize("name", ["capacity", "scheduling", "routing", "coverage"])
def test_planners_and_baselines_respect_user_blocks(name):
    from engine import Engine
    from engine.baselines.cormab import BASELINES

    env = _constrained(name, [GROUPS])
    model = env.action_model()
    rng = np.random.default_rng(1)
    for method in ("whittle", "lagrangian"):
        policy = Engine.plan(env, method)
        for _ in range(3):
            state = [*rng.integers(0, 4, 6).tolist(), 4]
            d = policy.decide(state)
            assert model.is_feasible(d.action) and d.action[:3].sum() <= 1 and d.action[3:].sum() <= 1
            assert policy.decide(state, "greedy").action[:3].sum() <= 1
    for baseline, cls in BASELINES.items():
        for states in (np.zeros(6, dtype=np.int64), np.full(6, 2)):
            assert model.is_feasible(cls(env.instance).act(states, 4, rng)), baseline


def test_intervention_domains_keep_user_blocks_in_their_own_milp():
    base = make("multi_intervention", n_arms=8, budget=2, seed=0).instance.model_dump(mode="json")
    n = len(base["weights"][0])
    blocks = [{"kind": "group_cap", "groups": [0] * n, "caps": [1]}]
    inst = make("multi_intervention", instance={**base, "constraints": blocks}).instance
    assert inst.action_model().enumerate().shape[0] == 0  # exactly 2 used, at most 1 allowed: empty
    sol = HighsSolver().solve(inst.myopic_milp(np.zeros(8, dtype=np.int64)), time_limit=10.0)
    assert sol.x is None


def test_save_and_load_keep_user_blocks(tmp_path):
    import torch

    from engine import Engine
    from engine.sequoia.dqn import make_encoder
    from engine.sequoia.q_network import QNetwork

    env = _constrained()
    text = env.instance.model_dump_json()
    assert type(env.instance).model_validate_json(text) == env.instance
    assert type(env.instance).model_validate_json(text).model_dump_json() == text
    enc = make_encoder(env.instance)
    torch.manual_seed(0)
    net = QNetwork(env.instance.n_actions, enc.dim, (8,), enc.context_dim)
    engine = Engine(env.scenario, env.instance, net)
    loaded = Engine.load(engine.save(tmp_path / "dqn"))
    assert loaded.instance.constraints == env.instance.constraints
    assert loaded.model.row_names == env.action_model().row_names
    config = json.loads((tmp_path / "dqn" / "config.json").read_text())
    assert config["instance"]["constraints"][0] == GROUPS
    planner = Engine.plan(env, "lagrangian")
    again = Engine.load(planner.save(tmp_path / "planner"))
    assert again.instance.constraints == env.instance.constraints
    state = [3, 3, 3, 3, 3, 3, 5]
    for policy in (loaded, again):
        d = policy.decide(state)
        assert d.action[:3].sum() <= 1 and d.action[3:].sum() <= 1 and d.action[4] + d.action[5] <= 1
        assert d.assignment["constraints[0]"] == {
            "groups": {"0": int(d.action[:3].sum()), "1": int(d.action[3:].sum())}
        }


# ------------------------------------------------------------------------------------- 4. assignments


def _check_assignment(name: str, instance, action: np.ndarray, assignment: dict) -> None:
    pulled = set(np.flatnonzero(action).tolist())
    if name == "capacity":
        served = [j for arms in assignment["workers"].values() for j in arms]
        assert sorted(served) == sorted(pulled)
        for worker, arms in assignment["workers"].items():
            assert sum(instance.costs[j] for j in arms) <= instance.capacities[int(worker)]
    elif name == "scheduling":
        meetings = assignment["slots"]
        assert len({(m["worker"], m["slot"]) for m in meetings}) == len(meetings)  # a worker-slot meets one arm
        for m in meetings:
            assert m["slot"] in instance.worker_slots[m["worker"]] and m["slot"] in instance.arm_slots[m["arm"]]
        for j in pulled:
            assert sum(m["arm"] == j for m in meetings) == instance.assignments_per_pull
    elif name == "routing":
        route = assignment["route"]
        edges = {tuple(sorted(e)) for e in instance.edges}
        assert route[0] == route[-1] == instance.source and len(route) == 2 * instance.budget + 1
        assert all(u == v or tuple(sorted((u, v))) in edges for u, v in itertools.pairwise(route))
        assert pulled <= set(route)
    else:
        reach = np.asarray(instance.weights) > 0
        assert {int(i): arms for i, arms in assignment["interventions"].items()} == {
            i: np.flatnonzero(reach[:, i]).tolist() for i in pulled
        }


@pytest.mark.parametrize("name", ["capacity", "scheduling", "routing", "multi_intervention"])
def test_decide_returns_an_assignment_consistent_with_the_blocks(name):
    from engine import Engine

    env = make(name, n_arms=8, budget=3, seed=2)
    policy = Engine.plan(env, "lagrangian")
    states = np.random.default_rng(0).integers(0, 4, (4, 8))
    decisions = policy.decide_batch(states)
    for d in decisions:
        assert d.action.sum() > 0
        _check_assignment(name, env.instance, d.action, d.assignment)
        assert d.to_dict()["assignment"] == d.assignment


def test_with_constraints_remembers_its_block_and_pyomo_block_is_data():
    from scenarios.user_constraints import pyomo_block

    model = make("capacity", n_arms=6, budget=3, seed=0).action_model()
    build = lambda m: [m.a[0] + m.a[1] <= 1, m.a[2] >= 0]  # noqa: E731
    constrained = model.with_constraints(build)
    assert [b.kind for b in constrained.blocks] == ["worker_capacity", "linear"]
    assert constrained.block_labels == [None, "user"]
    block = pyomo_block(build, 6)
    assert block == constrained.blocks[-1] and parse_blocks([block.model_dump(mode="json")]) == [block]
    via_field = compose([*model.blocks, block], 6, labels=[None, "user"])
    assert sorted(map(tuple, via_field.enumerate().tolist())) == sorted(map(tuple, constrained.enumerate().tolist()))


# ------------------------------------------------------------------------------------ 5. CLI and REST


def test_cli_decide_prints_the_assignment(tmp_path, capsys):
    from api.cli import main
    from engine import Engine

    path = Engine.plan(_constrained(), "whittle").save(tmp_path / "p")
    assert main(["decide", str(path), "--state", "3,3,3,3,3,3,5"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["assignment"]) == {"workers", "constraints[0]"}
    assert (
        sorted(j for arms in out["assignment"]["workers"].values() for j in arms)
        == np.flatnonzero(out["action"]).tolist()
    )


def test_rest_accepts_constraints_and_returns_assignments(rest):
    client, headers = rest
    instance = _constrained().instance.model_dump(mode="json")
    r = client.post(
        "/v1/planners", json={"scenario": "capacity", "planner": "whittle", "instance": instance}, headers=headers
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    d = client.post(f"/v1/policies/{pid}/decisions", json={"state": [3, 3, 3, 3, 3, 3, 5]}, headers=headers)
    assert d.status_code == 201, d.text
    body = d.json()
    action = np.asarray(body["action"])
    assert action[:3].sum() <= 1 and action[3:].sum() <= 1
    assert body["assignment"]["constraints[0]"]["groups"] == {"0": int(action[:3].sum()), "1": int(action[3:].sum())}
    batch = client.post(
        f"/v1/policies/{pid}/decisions/batch", json={"states": [[3] * 6 + [5], [0] * 6 + [2]]}, headers=headers
    )
    assert batch.status_code == 201, batch.text
    assert all("workers" in x["assignment"] for x in batch.json()["decisions"])


@pytest.mark.parametrize(
    ("blocks", "field"),
    [
        ([GROUPS, {"kind": "group_cap", "groups": [0] * 6, "caps": [-1]}], "instance.constraints[1].caps[0]"),
        ([{"kind": "group_cap", "groups": [0, 0], "caps": [1]}], "instance.constraints[0].groups"),
        (
            [{"kind": "linear", "rows": [{"terms": {"a[9]": 1}, "rhs": 1}]}],
            "instance.constraints[0].rows[0].terms.a[9]",
        ),
        ([{"kind": "budget", "limit": 1, "extra": 1}], "instance.constraints[0].extra"),
    ],
)
def test_rest_rejects_bad_constraints_with_422_naming_the_field(rest, blocks, field):
    client, headers = rest
    instance = {**make("capacity", n_arms=6, budget=3, seed=0).instance.model_dump(mode="json"), "constraints": blocks}
    r = client.post(
        "/v1/planners", json={"scenario": "capacity", "planner": "whittle", "instance": instance}, headers=headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    checked = client.post("/v1/scenarios/capacity/validate", json={"instance": instance}, headers=headers).json()
    assert checked["valid"] is False and checked["error"]["field"] == field
    with pytest.raises(InvalidInputError) as err:
        make("capacity", instance=instance)
    assert err.value.field == field


def test_training_and_every_selector_respect_user_blocks():
    from engine import Engine
    from engine.sequoia.dqn import DQNConfig
    from engine.sequoia.selectors import SELECTORS

    env = _constrained()
    config = DQNConfig(hidden=(8,), episodes=2, warm_start_samples=16, warm_start_epochs=1, snapshots=1)
    engine = Engine.train(env, config, seed=0, progress=False)
    assert engine.instance.constraints == env.instance.constraints
    model = env.action_model()
    for selector in sorted(SELECTORS):
        for state in ([3, 3, 3, 3, 3, 3, 5], [0, 1, 2, 3, 2, 1, 2]):
            d = engine.decide(state, selector=selector)
            assert model.is_feasible(d.action), selector
            assert d.assignment["constraints[0]"]["groups"] == {
                "0": int(d.action[:3].sum()),
                "1": int(d.action[3:].sum()),
            }


def test_a_linear_row_on_another_blocks_auxiliary_couples_them():
    capacity = WorkerCapacityBlock(costs=[2, 2, 3, 1], capacities=[3, 4])
    only_worker_1 = LinearBlock.model_validate({"rows": [{"terms": {"x[0,2]": 1}, "sense": "==", "rhs": 0}]})
    model = compose([capacity, only_worker_1], 4, labels=[None, "constraints[0]"])
    assert model.oracle is None and model.aux_names == capacity.compile(4).aux_names
    # arm 2 (cost 3) must go to worker 1 (capacity 4): with arm 2, at most arm 3 (cost 1) fits beside it on
    # worker 1, and worker 0 (capacity 3) takes one of arms 0, 1
    feasible = {tuple(a) for a in model.enumerate().tolist()}
    free = {tuple(a) for a in capacity.compile(4).enumerate().tolist()}
    assert (1, 0, 1, 1) in feasible and (1, 1, 1, 0) not in feasible and (1, 1, 1, 0) in free
    assert feasible < free
    a = np.array([1, 0, 1, 1])
    workers = model.assignment(a)["workers"]
    assert 2 in workers["1"] and sorted(j for arms in workers.values() for j in arms) == [0, 2, 3]
    with pytest.raises(ValueError, match=r"constraints\[0\]\.rows\[0\]\.terms: unknown variable 'y\[0\]'"):
        compose(
            [capacity, LinearBlock.model_validate({"rows": [{"terms": {"y[0]": 1}, "rhs": 0}]})],
            4,
            labels=[None, "constraints[0]"],
        )
