"""LP-update planner (model-predictive control): every decision re-solves the occupancy LP from the current
arm states over the time left, then turns its first step into a feasible joint action with a MILP.

Two roundings of the first-step solution:

* ``"marginals"``: maximise sum_i q_0i a_i (the LP's first-step action marginals) over the feasible set, ties
  broken by the re-solved Lagrangian values (a tiny weight);
* ``"duals"``: the Lagrangian planner with multipliers re-solved at this state (exact step reward + the
  per-arm DP continuation under the new prices).

The LP grows with the time left (J x h x S x V occupancies), so a decision costs one LP solve: use it where
decisions are not latency-bound, and the Lagrangian planner (multipliers solved once) otherwise.

Warm start (``warm_start=True``, the default): the LPs at one time to go differ only in the first step's flow
right-hand sides (the current states), so each is solved by simplex from the optimal basis of the LP from the
instance's initial distribution at that time to go, solved once (cold when that solve does not end proven
optimal). The start basis is a function of the time to go alone, never of the states visited before, so the
planner stays a deterministic function of (states, time to go): a Markov policy, as the exact policy evaluation
requires. At J = 100 capacity this takes a decision's LP from about 1.4 s to about 0.5 s (random states and times
to go). Degenerate LPs have several optimal duals, and which one a solve returns depends on its start, so warm and
cold tables can differ where the duals are degenerate (the decisions rarely do: ``bench_lp_update_rounding.py
--warm-start``).
"""

from __future__ import annotations

import time

import highspy
import numpy as np

from engine.analysis.occupancy_lp import OccupancyLP, build_occupancy_lp
from engine.planners.arm_values import ControlStructure, joint_values
from engine.planners.base import Planner, PlannerTimeLimitError, remaining_seconds
from engine.planners.lagrangian import decision_table, lagrangian_values, solved_lp
from scenarios.errors import InvalidInputError
from solvers.milp import MatrixMILP

ROUNDINGS = ("duals", "marginals")
_TIE_WEIGHT = 1e-3


class LPUpdatePlanner(Planner):
    name = "lp_update"
    can_be_prior = False
    option_names = ("rounding", "warm_start")

    def __init__(self, instance, rounding: str = "duals", warm_start: bool = True, **options) -> None:
        if rounding not in ROUNDINGS:
            raise InvalidInputError("rounding", f"expected one of {ROUNDINGS}, got {rounding!r}")
        if not isinstance(warm_start, bool):
            raise InvalidInputError("warm_start", f"expected true or false, got {warm_start!r}")
        super().__init__(instance, rounding=rounding, warm_start=warm_start, **options)
        self.rounding = rounding
        self.warm_start = warm_start
        self._cache: tuple[bytes, int, np.ndarray, np.ndarray] | None = None
        self._scale: tuple[tuple[bytes, int], float] | None = None  # the tie-break's scale at the last state
        self._bases: dict[int, highspy.HighsBasis | None] = {}  # time to go -> start basis (None: solve cold)

    def _start_basis(self, time_to_go: int) -> highspy.HighsBasis | None:
        """The optimal basis of the LP from the initial distribution over ``time_to_go`` steps (solved once)."""
        if not self.warm_start:
            return None
        if time_to_go not in self._bases:
            lp = build_occupancy_lp(self.instance, self.model, training=False, horizon=time_to_go)
            deadline = self.deadline
            basis = _optimal_basis(lp, 600.0 if deadline is None else min(600.0, remaining_seconds(deadline)))
            if basis is None and deadline is not None and time.perf_counter() >= deadline:
                # stopped by the decision's limit: not cached (the start stays a function of the time to go)
                raise PlannerTimeLimitError("the warm start's LP did not finish within the decision's time limit")
            self._bases[time_to_go] = basis
        return self._bases[time_to_go]

    def _solve(self, states: np.ndarray, time_to_go: int) -> tuple[np.ndarray, np.ndarray]:
        """(decision table (J, V), first-step marginals (N,)) at this state, cached for the last state."""
        s = np.asarray(states, dtype=np.int64)
        key = s.tobytes()
        if self._cache is not None and self._cache[0] == key and self._cache[1] == int(time_to_go):
            return self._cache[2], self._cache[3]
        if self.deadline is not None:
            remaining_seconds(self.deadline)  # none left: no LP to build
        rho = np.zeros((len(s), self.structure.n_states))
        rho[np.arange(len(s)), s] = 1.0
        lp = build_occupancy_lp(self.instance, self.model, training=False, rho=rho, horizon=int(time_to_go))
        basis = self._start_basis(int(time_to_go))
        values, marginals = lagrangian_values(lp, self.structure, basis=basis, deadline=self.deadline)
        table = decision_table(values, self.structure, s, 0)
        self._cache = (key, int(time_to_go), table, marginals)
        return table, marginals

    def table(self, states: np.ndarray, time_to_go: int) -> np.ndarray:
        table, marginals = self._solve(states, time_to_go)
        if self.rounding == "duals":
            return table
        return _marginal_table(marginals, table, self.structure)

    def milp(self, states: np.ndarray, time_to_go: int) -> MatrixMILP:
        if self.rounding == "duals" or self.structure.is_pull:
            return super().milp(states, time_to_go)
        _table, marginals = self._solve(states, time_to_go)
        milp = super().milp(states, time_to_go)  # the Lagrangian objective over (a, aux, z) ... (blocked z at 0)
        scale = _TIE_WEIGHT / self._tie_scale(states, time_to_go, milp)
        milp.c = milp.c * scale
        milp.offset *= scale
        milp.c[: len(marginals)] += marginals  # ... as the tie-break of the marginals' objective
        return milp

    def score(self, states: np.ndarray, time_to_go: int, actions: np.ndarray) -> np.ndarray:
        if self.rounding == "duals" or self.structure.is_pull:
            return super().score(states, time_to_go, actions)
        table, marginals = self._solve(states, time_to_go)
        a = np.atleast_2d(actions)
        lag = joint_values(table, self.structure, a)
        finite = np.isfinite(lag)  # -inf: an action taking a level unavailable in the state
        # the MILP's own scale (a function of the state alone): an action scores what the MILP gives it, whichever
        # other actions are scored with it
        tie = _TIE_WEIGHT * np.where(finite, lag, 0.0) / self._tie_scale(states, time_to_go)
        return np.where(finite, a @ marginals + tie, -np.inf)

    def _tie_scale(self, states: np.ndarray, time_to_go: int, milp: MatrixMILP | None = None) -> float:
        """The largest magnitude among the Lagrangian decision MILP's objective coefficients at this state (at
        least 1e-12), kept for the last state: greedy ascent scores one state many times."""
        key = (np.asarray(states, dtype=np.int64).tobytes(), int(time_to_go))
        if self._scale is None or self._scale[0] != key:
            if milp is None:
                milp = super().milp(states, time_to_go)
            self._scale = (key, max(float(np.abs(milp.c).max(initial=0.0)), 1e-12))
        return self._scale[1]


def _optimal_basis(lp: OccupancyLP, time_limit: float = 600.0) -> highspy.HighsBasis | None:
    """The optimal simplex basis of ``lp`` (crossover after interior point on large LPs); None if there is none."""
    h = solved_lp(lp, time_limit, None, crossover=True)
    basis = h.getBasis()
    optimal = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return basis if optimal and basis.valid else None


def _marginal_table(marginals: np.ndarray, table: np.ndarray, structure: ControlStructure) -> np.ndarray:
    """Arm-pull domains: the per-arm table whose objective is the marginals plus the tie-break."""
    if not structure.is_pull:
        return table
    gains = table[:, 1] - table[:, 0]  # -inf: the arm cannot be pulled in its state (its tie-break stays -inf)
    tie = _TIE_WEIGHT * gains / _finite_scale(gains)
    return np.stack([np.zeros_like(gains), marginals + tie], axis=1)


def _finite_scale(x: np.ndarray) -> float:
    """The largest finite magnitude in ``x`` (entries of -inf are unavailable choices), at least 1e-12."""
    finite = np.isfinite(x)
    return max(float(np.abs(x[finite]).max()) if finite.any() else 1.0, 1e-12)
