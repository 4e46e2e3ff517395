"""Vectorised batch decisions of a planner: one table pass and one oracle pass for many states.

When the planner's objective is linear in the action (arm pulls, a table objective) and the domain declares a
structure whose oracle has ``argmax_batch`` (budget, capacity, scheduling), a batch of states is decided at once:
the planner's tables for every state, the gains, every state's exact argmax in one vectorised oracle call, and one
certificate (assignment) per distinct action. Otherwise the caller decides state by state.

A single decision may reach the same optimum by another route (the dominance-reduced MILP of
:mod:`engine.planners.reduction`, exact to ``mip_rel_gap``), which can pick another of several (near-)optimal
actions. An oracle with ``argmax_margin_batch`` also says by how much each row's optimum beats every action that
such a MILP could return instead; rows whose margin is within the MILP's tolerance are decided by the single
call, so every row's action is the one a single call returns.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.decision import Decision
from engine.planners.objective import penalised_gains
from engine.sequoia.selectors.greedy import distinct_rows
from solvers.oracles import oracle_for
from solvers.solution import OPTIMAL

if TYPE_CHECKING:
    from engine.planners.policy import PlannerPolicy

BATCH_ORACLES = ("budget", "capacity", "scheduling")

#: HiGHS's default absolute MIP gap (an incumbent this close to the bound is accepted)
MILP_ABS_GAP = 1e-6

#: an oracle whose batch scores more entries per state than this (``scoring_entries``: the scheduling oracle's
#: count vectors x classes, about 3 ns each) decides state by state: one reduced MILP (1-3 ms) then costs less
MAX_SCORING_ENTRIES = 250_000


def batch_oracle(policy: PlannerPolicy) -> Any | None:
    """The vectorised oracle for ``policy``'s model, or None when its batches go state by state (also for a
    planner that re-solves an LP per state, ``lp_update``: that solve is the cost, and a batch would not share it)."""
    structure = policy.model.structure
    if structure is None or structure.kind not in BATCH_ORACLES or not policy.linear_objective():
        return None
    if not policy.planner.can_be_prior or not policy.reduce:  # reduce=False: every decision solves the full MILP
        return None
    model = policy.model
    cached = policy.batch_oracle_cache
    if cached is not None and cached[0] == model.uid:  # built once per model (a swapped model rebuilds it)
        return cached[1]
    oracle = oracle_for(model)
    if oracle is None or not hasattr(oracle, "argmax_batch"):
        oracle = None
    else:
        scoring = getattr(oracle, "scoring_entries", None)
        oracle = None if scoring is not None and scoring() > MAX_SCORING_ENTRIES else oracle
    policy.batch_oracle_cache = (model.uid, oracle)
    return oracle


def parse_rows(instance: Any, observations: Any, rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Arm states (B, J) and times to go (B,) of ``instance``: checked in one pass for an integer array of valid
    rows, else row by row by ``observations.split_observation`` (so a bad row gets the single decision's error)."""
    J, H = instance.n_arms, instance.horizon
    try:
        arr: np.ndarray | None = np.asarray(rows)
    except (ValueError, TypeError):  # ragged or odd rows: checked one by one below
        arr = None
    if arr is not None and arr.ndim == 2 and arr.dtype.kind in "iu" and arr.shape[1] in (J, J + 1):
        states = arr[:, :J].astype(np.int64)
        ttg = arr[:, J].astype(np.int64) if arr.shape[1] == J + 1 else np.full(len(arr), H, dtype=np.int64)
        counts = np.asarray(instance.arms.state_counts)
        if np.all((states >= 0) & (states < counts)) and np.all((ttg >= 1) & (ttg <= H)):
            return states, ttg
    parsed = [observations.split_observation(row) for row in rows]
    return np.stack([s for s, _ in parsed]), np.array([t for _, t in parsed], dtype=np.int64)


def decide_batch_vectorised(
    policy: PlannerPolicy, oracle: Any, rows: Sequence[Any], time_limit: float | None = None
) -> list[Decision] | None:
    """Every row's exact decision (``optimal``, the oracle proves it), or None when a table is not finite; rows
    decided one by one (near-ties) get ``time_limit`` each."""
    start = time.perf_counter()
    states, ttg = parse_rows(policy.instance, policy.observations, rows)
    tables = policy.planner.fit().tables(states, ttg)
    gains, base = tables[:, :, 1] - tables[:, :, 0], tables[:, :, 0].sum(axis=1)
    if not np.all(np.isfinite(base)) or (not np.all(np.isfinite(gains)) and not policy.model.downward_closed):
        return None
    gains, closed = penalised_gains(gains)  # arms that cannot be pulled in their states: never taken
    if hasattr(oracle, "argmax_margin_batch"):
        actions, margins = oracle.argmax_margin_batch(gains)
    else:
        actions, margins = oracle.argmax_batch(gains), np.full(len(gains), np.inf)
    if np.any(actions[closed]):
        return None
    values = np.einsum("bn,bn->b", gains, actions) + base
    single = margins <= 2.0 * (policy.mip_rel_gap * np.maximum(1.0, np.abs(values)) + MILP_ABS_GAP)
    batched = np.flatnonzero(~single)
    distinct, inverse = distinct_rows(actions[batched])
    assignments = []
    for a in distinct:  # one feasibility check and certificate per distinct action
        policy.model.check(a)
        assignments.append(policy.model.assignment(a))
    seconds = (time.perf_counter() - start) / max(1, batched.size)
    structure = policy.model.structure
    reason = f"exact {structure.kind if structure is not None else '?'} oracle, vectorised batch"
    decisions: list[Decision | None] = [None] * len(rows)
    for i, k in zip(batched.tolist(), inverse.tolist(), strict=True):
        value = float(values[i])
        d = Decision(actions[i].copy(), value, value, 0.0, OPTIMAL, seconds, "mip")
        d.reason, d.assignment = reason, assignments[k]
        d.policy_version = policy.policy_version
        decisions[i] = d
    for i in np.flatnonzero(single).tolist():  # (near-)ties: the single call's choice among the optima
        decisions[i] = policy.decide(rows[i], "mip", time_limit)
    return [d for d in decisions if d is not None]
