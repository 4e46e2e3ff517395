"""Vectorised batch decisions of a planner: one table pass and one oracle pass for many states.

When the planner's objective is linear in the action (arm pulls, a table objective) and the domain declares a
structure whose oracle has ``argmax_batch`` (budget, capacity), a batch of states is decided at once: the
planner's tables for every state, the gains, every state's exact argmax in one vectorised oracle call, and one
certificate (assignment) per distinct action. Otherwise the caller decides state by state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.decision import Decision
from solvers.oracles import oracle_for
from solvers.solution import OPTIMAL

if TYPE_CHECKING:
    from engine.planners.policy import PlannerPolicy

BATCH_ORACLES = ("budget", "capacity")


def batch_oracle(policy: PlannerPolicy) -> Any | None:
    """The vectorised oracle for ``policy``'s model, or None when its batches go state by state."""
    structure = policy.model.structure
    if structure is None or structure.kind not in BATCH_ORACLES or not policy.linear_objective():
        return None
    oracle = oracle_for(policy.model)
    return oracle if oracle is not None and hasattr(oracle, "argmax_batch") else None


def _parse(policy: PlannerPolicy, rows: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Arm states (B, J) and times to go (B,): checked in one pass for an integer array of valid rows, else row
    by row (so a bad row gets the single decision's error)."""
    instance = policy.instance
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
    parsed = [policy.observations.split_observation(row) for row in rows]
    return np.stack([s for s, _ in parsed]), np.array([t for _, t in parsed], dtype=np.int64)


def decide_batch_vectorised(policy: PlannerPolicy, oracle: Any, rows: Sequence[Any]) -> list[Decision] | None:
    """Every row's exact decision (``optimal``, the oracle proves it), or None when a table is not finite."""
    start = time.perf_counter()
    states, ttg = _parse(policy, rows)
    tables = policy.planner.fit().tables(states, ttg)
    gains, base = tables[:, :, 1] - tables[:, :, 0], tables[:, :, 0].sum(axis=1)
    if not np.all(np.isfinite(gains)):
        return None
    actions = oracle.argmax_batch(gains)
    values = np.einsum("bn,bn->b", gains, actions) + base
    distinct, inverse = np.unique(actions, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)  # numpy versions differ in its shape
    assignments = []
    for a in distinct:  # one feasibility check and certificate per distinct action
        policy.model.check(a)
        assignments.append(policy.model.assignment(a))
    seconds = (time.perf_counter() - start) / len(rows)
    structure = policy.model.structure
    reason = f"exact {structure.kind if structure is not None else '?'} oracle, vectorised batch"
    decisions = []
    for i, a in enumerate(actions):
        value = float(values[i])
        d = Decision(a.copy(), value, value, 0.0, OPTIMAL, seconds, "mip")
        d.reason, d.assignment = reason, assignments[int(inverse[i])]
        d.policy_version = policy.policy_version
        decisions.append(d)
    return decisions
