"""Whittle indices of restless arms by subsidy search, vectorised over arms, states and action levels.

For a charge ``lam`` per unit of action cost (with costs (0, 1) this is the subsidy ``lam`` for staying
passive), the index of (state s, level k) is the charge at which the arm is indifferent between the best
action of level >= k and the best action below k. It is found by bisection on ``lam`` with each probe solved
exactly (policy iteration with linear solves for discounted arms, backward induction for a finite horizon).
Each probe also yields the advantage as an exact affine function of ``lam`` for the optimal policy, so the
bracket is cut at that function's root when it lies inside (a safeguarded Newton step; the advantage is
piecewise affine, so this ends in a few probes). With actions (passive, active) there is one level.
Indices of arms that fail the indexability check are NaN and listed in ``non_indexable``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from bandits.restless.arms import RestlessArms
from bandits.restless.indexability import check_indexability
from bandits.restless.planning import solve_discounted, solve_finite
from bandits.validation import as_index_array, check_discount
from scenarios.errors import InvalidInputError

#: halvings of an index's bracket before its far end is probed once
BISECT_BEFORE_END = 4


@dataclass
class WhittleIndices:
    """``values``: (arms, states, levels) discounted, (arms, horizon, states, levels) finite-horizon
    (index h-1 for time-to-go h); NaN rows for non-indexable arms. ``raw`` keeps the unchecked roots."""

    values: np.ndarray
    raw: np.ndarray
    indexable: np.ndarray
    discount: float
    horizon: int | None
    seconds: float
    probes: int

    @property
    def non_indexable(self) -> np.ndarray:
        return np.flatnonzero(~self.indexable)

    def at(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        """Indices of each arm's current state, shape states.shape + (levels,)."""
        n_arms, n_states = self.values.shape[0], self.values.shape[-2]
        s = as_index_array(states, "states", n_states)
        if s.shape[-1:] != (n_arms,):
            raise InvalidInputError("states", f"expected {n_arms} entries per row, got shape {s.shape}")
        arm = np.arange(n_arms)
        if self.horizon is None:
            return self.values[arm, s]
        if time_to_go is None or not 1 <= int(time_to_go) <= self.horizon:
            raise InvalidInputError("time_to_go", f"expected an integer in [1, {self.horizon}], got {time_to_go!r}")
        return self.values[arm, int(time_to_go) - 1, s]


def model_arrays(arms: RestlessArms | tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transitions, rewards, costs) of RestlessArms, or of an already-validated array tuple (P, R, C)."""
    if isinstance(arms, tuple):
        P, R, C = (np.asarray(x, dtype=float) for x in arms[:3])
        if P.ndim != 4 or R.shape != (P.shape[0], P.shape[2], P.shape[1]) or C.shape != P.shape[:2]:
            raise InvalidInputError("arms", f"inconsistent shapes {P.shape}, {R.shape}, {C.shape}")
        return P, R, C
    parsed = RestlessArms.parse(arms)
    if parsed.restricted:
        raise InvalidInputError(
            "arms.available",
            "the restless-bandit indices do not model state-dependent availability; plan restricted arms with "
            "engine.planners (Engine.plan) on an allocation scenario",
        )
    P, R, C, _ = parsed.arrays()
    return P, R, C


def whittle_indices(
    arms: RestlessArms | tuple,
    discount: float = 0.95,
    horizon: int | None = None,
    tol: float = 1e-10,
    max_probes: int = 100,
    check: bool = True,
) -> WhittleIndices:
    """Whittle indices of every arm (discounted infinite horizon when ``horizon`` is None)."""
    discount, horizon = check_discount(discount, horizon)
    start = time.perf_counter()
    P, R, C = model_arrays(arms)
    N, A, S, _ = P.shape
    K = A - 1
    H = 1 if horizon is None else horizon
    shape = (N, S, K) if horizon is None else (N, H, S, K)
    grid = np.indices(shape).reshape(len(shape), -1)
    arm, state, level = grid[0], grid[-2], grid[-1] + 1
    ttg = np.full(arm.size, H) if horizon is None else grid[1] + 1

    # scale of values and a bracket that contains every index of an indexable arm; R = -inf marks an action
    # unavailable in a state (its index there is -inf: never taken)
    finite = np.isfinite(R)
    span = np.where(finite, R, -np.inf).max(axis=(1, 2)) - np.where(finite, R, np.inf).min(axis=(1, 2)) + 1e-12
    mult = (1.0 / (1.0 - discount)) if horizon is None else float(np.sum(discount ** np.arange(H)))
    gap = np.diff(C, axis=1).min(axis=1)
    bound = (4.0 * span * mult / gap + 1.0)[arm]
    atol = (tol * (1.0 + span * mult))[arm]
    lo, hi = -bound, bound.copy()
    # start at the myopic index (immediate gain per unit of marginal cost; exact at time-to-go 1)
    with np.errstate(invalid="ignore"):
        lam = (R[arm, state, level] - R[arm, state, level - 1]) / (C[arm, level] - C[arm, level - 1])
    closed = np.where(np.arange(A)[None, :] >= level[:, None], ~finite[arm, state], True).all(1)  # no level >= k
    lam = np.asarray(np.where(np.isfinite(lam), lam, 0.0), dtype=float)
    lam[closed] = -np.inf
    policy = np.zeros((arm.size, S), dtype=np.int64)
    warm = np.zeros(arm.size, dtype=bool)
    done = np.array(closed, dtype=bool)
    halvings = np.zeros(arm.size, dtype=np.int64)
    levels = np.arange(A)
    probes = 0
    for _ in range(max_probes):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        probes += 1
        a_ = arm[act]
        if horizon is None:
            pol, Qa, Qb = solve_discounted(
                P[a_], R[a_], C[a_], lam[act], discount, policy[act] if warm[act].all() else None
            )
            policy[act], warm[act] = pol, True
            qa, qb = Qa[np.arange(act.size), state[act]], Qb[np.arange(act.size), state[act]]
        else:
            qa, qb = solve_finite(P[a_], R[a_], C[a_], lam[act], H, discount, record=ttg[act])
            qa, qb = qa[np.arange(act.size), state[act]], qb[np.arange(act.size), state[act]]
        q = qa - lam[act, None] * qb
        upper = levels[None, :] >= level[act, None]
        a1 = np.where(upper, q, -np.inf).argmax(1)
        a0 = np.where(upper, -np.inf, q).argmax(1)
        rows = np.arange(act.size)
        delta = q[rows, a1] - q[rows, a0]
        slope = qb[rows, a1] - qb[rows, a0]  # delta(l) = (qa1 - qa0) - l * slope near lam
        root = np.where(slope > 0, (qa[rows, a1] - qa[rows, a0]) / np.where(slope > 0, slope, 1.0), np.nan)
        lo[act] = np.where(delta > 0, lam[act], lo[act])
        hi[act] = np.where(delta < 0, lam[act], hi[act])
        finished = (np.abs(delta) <= atol[act]) | (hi[act] - lo[act] <= tol * (1.0 + np.abs(lam[act])))
        inside = (root > lo[act]) & (root < hi[act])
        # no usable Newton step: bisect; after BISECT_BEFORE_END halvings try the bracket's far end once (where the
        # advantage keeps its sign over the whole bracket, e.g. a capped arm whose subsidy also pays for the pulls
        # the cap takes away, this ends the search instead of after ~35 halvings)
        halvings[act] += ~inside
        end = ~inside & (halvings[act] == BISECT_BEFORE_END)
        far = np.where(delta < 0, lo[act], hi[act])
        nxt = np.where(inside, root, np.where(end, far, 0.5 * (lo[act] + hi[act])))
        lam[act] = np.where(finished, lam[act], nxt)
        done[act] = finished
    raw = lam.reshape(shape)
    raw[~done.reshape(shape)] = np.nan
    converged = np.asarray(~np.isnan(raw).reshape(N, -1).any(1), dtype=bool)
    indexable = check_indexability((P, R, C), raw, discount, horizon) if check else converged
    values = raw.copy()
    values[~indexable] = np.nan
    return WhittleIndices(values, raw, indexable, discount, horizon, time.perf_counter() - start, probes)
