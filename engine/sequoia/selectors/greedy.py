"""Greedy selector: add the action entry with the best Q gain while the action stays feasible.

A batch of states ascends in lock step (:func:`greedy_ascent_batch`): each round scores every state's candidates in
one network forward. Float32 forwards differ in their last bits with the batch's composition, so a row whose
choice in some round is within the tie tolerances (best vs second-best candidate, or stopping vs adding) is
decided again on its own: every row's action is the one a single call returns.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from engine.decision import Decision
from engine.sequoia.state_q import StateQ
from scenarios.action_model import ActionModel
from scenarios.feasibility import QuickFeasibility
from solvers.solution import HEURISTIC

if TYPE_CHECKING:
    from engine.sequoia.state_q_batch import StateQBatch

#: closeness of a batch row's greedy choice, relative to 1 + a bound on the network's partial sums for the actions
#: compared (float32: their last bits depend on the batch), below which the row is left to a single call;
#: about 17 float32 epsilons, 50x the largest batch-vs-single difference measured (2e-8 of the scale, trained and
#: random networks, J = 20)
BATCH_TIE_TOL = 1e-6

#: the same relative to 1 + the whole values compared (float64: the prior's linear part, summed in another order)
LINEAR_TIE_TOL = 1e-9


def greedy_ascent(
    model: ActionModel,
    score: Callable[[np.ndarray], np.ndarray],
    costs: np.ndarray | None = None,
    closed: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Start empty; repeatedly add the entry with the best gain (per unit of ``costs`` when given).

    One batched ``score`` call per round. Stops when the action is feasible and no addition improves it.
    For feasible sets that are not downward closed (e.g. exactly B interventions) additions continue
    until the action is feasible. An addition scored -inf (an entry unavailable at the state) is never made; an
    ascent that can no longer reach a feasible action returns the best feasible action it passed. On such sets
    ``closed`` (the entries unavailable at the state) makes every addition one that a feasible action avoiding
    them still contains (a patrol's end within reach of where it stands).
    """
    n = model.n_actions
    extendable_test = _extendable_test(model, closed)
    a = np.zeros(n, dtype=np.int64)
    value = float(score(a[None])[0])
    eye = np.eye(n, dtype=np.int64)
    fallback = (a.copy(), value) if model.is_feasible(a) else None  # the best feasible action on the path
    while True:
        free = np.flatnonzero(a == 0)
        candidates = a[None, :] + eye[free]
        keep = np.fromiter((extendable_test(c) for c in candidates), dtype=bool, count=len(candidates))
        if not keep.any():
            break
        candidates, entries = candidates[keep], free[keep]
        values = score(candidates)
        allowed = values > -np.inf  # -inf: an entry unavailable at the state, never taken (not even for feasibility)
        if not allowed.any():
            break
        candidates, entries, values = candidates[allowed], entries[allowed], values[allowed]
        gains = values - value
        best = int(np.argmax(gains if costs is None else gains / costs[entries]))
        if values[best] <= value + 1e-12 and model.is_feasible(a):
            break
        a, value = candidates[best], float(values[best])
        if (fallback is None or value > fallback[1]) and model.is_feasible(a):
            fallback = (a.copy(), value)
    if not model.is_feasible(a) and fallback is not None:
        # a dead end (the only completions use entries unavailable at the state): the best feasible action passed
        a, value = fallback
    if not model.is_feasible(a):
        raise RuntimeError(f"greedy construction ended on an infeasible action in {model.name!r}")
    return a, value


def greedy_ascent_batch(q: StateQBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`greedy_ascent` (no costs) of every row of ``q`` at once: (actions (B, n), values (B,), settled (B,)).

    Each round takes the candidates of every active row (its action plus one free entry, in entry order, kept when
    quickly extendable: asked once per distinct candidate), scores them in one ``q.score`` call and applies the
    single ascent's rule per row (first best gain; stop when it does not improve on a feasible action).
    ``settled`` is False for a row with a choice within the tie tolerances (:data:`BATCH_TIE_TOL` of the
    network's bound, :data:`LINEAR_TIE_TOL` of the values) or an infeasible end: its action is not guaranteed to be the
    single call's."""
    model, B, n = q.model, len(q), q.model.n_actions
    extendable_test = _extendable_test(model)
    a = np.zeros((B, n), dtype=np.int64)
    value = q.score(np.arange(B), a)
    const, per_entry = q.network_bound()
    largest = per_entry.max(axis=1, initial=0.0)  # the most one added entry can raise the bound
    settled, active = np.ones(B, dtype=bool), np.ones(B, dtype=bool)
    eye = np.eye(n, dtype=np.int64)
    while active.any():
        rows = np.flatnonzero(active)
        k, j = np.nonzero(a[rows] == 0)  # candidates grouped by row, entries ascending
        owner, candidates = rows[k], a[rows[k]] + eye[j]
        distinct, inverse = distinct_rows(candidates)  # rows share most candidates
        extendable = np.fromiter((extendable_test(c) for c in distinct), dtype=bool, count=len(distinct))
        keep = extendable[inverse]
        owner, candidates = owner[keep], candidates[keep]
        active[rows] = False  # rows without a candidate stop; the others are re-activated below
        if owner.size == 0:
            break
        values = q.score(owner, candidates)
        gains = values - value[owner]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        segment = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, owner.size]))
        top = np.maximum.reduceat(gains, starts)
        best = np.minimum.reduceat(np.where(gains == top[segment], np.arange(owner.size), owner.size), starts)
        runner_up = np.maximum.reduceat(np.where(np.arange(owner.size) == best[segment], -np.inf, gains), starts)
        row, new = owner[starts], values[best]
        scale = 1.0 + const[row] + np.einsum("rn,rn->r", a[row], per_entry[row]) + largest[row]
        tol = BATCH_TIE_TOL * scale + LINEAR_TIE_TOL * (1.0 + np.abs(new) + np.abs(value[row]))
        feasible = np.fromiter((model.is_feasible(x) for x in a[row]), dtype=bool, count=row.size)
        stop = (new <= value[row] + 1e-12) & feasible
        # unsure: whether to stop, or (going on) which candidate is best; a stop settles the row whichever is best
        close = (feasible & (np.abs(new - value[row] - 1e-12) <= tol)) | (~stop & (top - runner_up <= tol))
        settled[row[close]] = False
        go = ~stop & ~close
        a[row[go]], value[row[go]] = candidates[best[go]], new[go]
        active[row[go]] = True
    ends = np.flatnonzero(settled)
    settled[ends] = np.fromiter((model.is_feasible(x) for x in a[ends]), dtype=bool, count=ends.size)
    return a, value, settled


def _extendable_test(model: ActionModel, closed: np.ndarray | None = None) -> Callable[[np.ndarray], bool]:
    """``model.quickly_extendable``, or the same verdict cheaper: without a quick-feasibility oracle that method is
    :meth:`~scenarios.action_model.ActionModel.extendable`, which on a downward-closed set is ``is_feasible``
    (asking it directly skips a runtime protocol check per call, most of its cost). On a set that is not downward
    closed, with entries ``closed`` at the state: whether a feasible action avoiding them still contains ``a``."""
    if closed is not None and np.any(closed) and not model.downward_closed:
        return functools.partial(model.extendable, closed=np.asarray(closed, dtype=bool))
    if model.downward_closed and not isinstance(model.oracle, QuickFeasibility):
        return model.is_feasible
    return model.quickly_extendable


def distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct 0/1 rows of ``x`` (in some order) and, for each row of ``x``, the index of its copy among them.
    Rows are packed to bits first (one 64-bit key per row up to 64 entries): sorting keys, not whole rows."""
    packed = np.packbits(np.asarray(x) != 0, axis=1)
    if packed.shape[1] <= 8:
        keys = np.zeros((len(packed), 8), dtype=np.uint8)
        keys[:, : packed.shape[1]] = packed
        _, first, inverse = np.unique(keys.view(np.uint64).reshape(-1), return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
    return x[first], inverse.reshape(-1)


class GreedySelector:
    name = "greedy"

    def select(self, q: StateQ, time_limit: float | None = None) -> Decision:
        start = time.perf_counter()
        a, value = greedy_ascent(q.model, q.score, closed=q.closed)
        return Decision(a, value, float("inf"), float("inf"), HEURISTIC, time.perf_counter() - start, self.name)

    def select_batch(self, q: StateQBatch, time_limit: float | None = None) -> list[Decision]:
        """One decision per row of ``q``, each the action :meth:`select` returns for that row alone."""
        if not q.vectorised:  # a network kind the batch cannot score: row by row
            return [self.select(q.row(i), time_limit) for i in range(len(q))]
        start = time.perf_counter()
        a, values, settled = greedy_ascent_batch(q)
        seconds = (time.perf_counter() - start) / max(1, int(settled.sum()))
        inf = float("inf")
        return [
            Decision(a[i], float(values[i]), inf, inf, HEURISTIC, seconds, self.name)
            if settled[i]
            else self.select(q.row(i), time_limit)
            for i in range(len(q))
        ]
