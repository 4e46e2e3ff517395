"""Lagrangian planner: each arm plans alone against the prices of the occupancy LP's coupling rows.

The occupancy LP (:mod:`engine.analysis.occupancy_bound`) ties every arm to the actions through one row per (step,
arm), sum_i w_ji q_ti = E[x_jt], and identical arms to each other. Its duals y on those rows price the
coupling: arm j's occupancy mu[t, s, v] pays (A_coupling^T y) on top of its reward, and with these prices
the LP separates into one exact DP per arm (backward induction over the horizon). The decision at time t
keeps the current step's constraints exact and uses the priced DP only for the future:

    table[j, v] = e_j(s_j, v) + E[ V_j(t + 1, s'_j) | x_j = v ]

maximised jointly over the feasible set: the Lagrangian index policy of the restless-bandit literature,
for any domain (arm pulls, interventions with shared reach, aux-variable feasible sets).
"""

from __future__ import annotations

import highspy
import numpy as np

from bandits.restless.occupancy_model import highs_for
from engine.analysis.occupancy_lp import OccupancyLP, build_occupancy_lp
from engine.planners.arm_values import ControlStructure, backward_values
from engine.planners.base import Planner, PlannerTimeLimitError, check_time_to_go, remaining_seconds


def lagrangian_values(
    lp: OccupancyLP,
    structure: ControlStructure,
    time_limit: float = 60.0,
    basis: highspy.HighsBasis | None = None,
    deadline: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``lp`` (by simplex from ``basis`` when given, cold if that start does not reach a proven optimum) and
    return (V (J, H + 1, S) the per-arm priced values, first-step action marginals). With a ``deadline``
    (``time.perf_counter()`` seconds) every solve stops by it, and :class:`PlannerTimeLimitError` is raised unless the
    LP was solved to a proven optimum by then."""

    def limit() -> float:
        return time_limit if deadline is None else min(time_limit, remaining_seconds(deadline))

    h = solved_lp(lp, limit(), basis)
    if basis is not None and h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        h = solved_lp(lp, limit(), None)
    if not _has_solution(h):
        h = solved_lp(lp, limit(), None, interior=True)  # rare: HiGHS's default ends with status Unknown
    if deadline is not None and h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise PlannerTimeLimitError(f"occupancy LP: {h.modelStatusToString(h.getModelStatus())} by the deadline")
    if not _has_solution(h):
        raise RuntimeError(f"occupancy LP: {h.modelStatusToString(h.getModelStatus())}")
    sol = h.getSolution()
    x, y = np.asarray(sol.col_value, float), np.asarray(sol.row_dual, float)
    y = _reduced_cost_sign(lp, x, y)
    assert lp.mu is not None and lp.reward is not None
    _J, _H, _S, _V = lp.mu.shape
    ext = lp.A[lp.coupling].T @ y[lp.coupling]  # price paid by each column through the coupling rows
    return priced_values(lp.reward, ext[lp.mu], structure), np.clip(x[lp.q[0]], 0.0, 1.0)


def priced_values(reward: np.ndarray, price: np.ndarray, structure: ControlStructure) -> np.ndarray:
    """Per-arm DP values V (J, H + 1, S) for step rewards ``reward`` (J, S, V) less ``price`` (J, H, S, V), each
    occupancy's price through the LP's coupling rows (invalid control values excluded)."""
    adjusted = reward[:, None, :, :] - price
    return backward_values(np.where(structure.valid[:, None, None, :], adjusted, -np.inf), structure)


def solved_lp(
    lp: OccupancyLP,
    time_limit: float,
    basis: highspy.HighsBasis | None,
    interior: bool = False,
    crossover: bool = False,
) -> highspy.Highs:
    """``lp`` solved by HiGHS: from ``basis`` by simplex, by interior point with crossover, or by its default
    (with ``crossover``: always ending on a basis, even where the default picks interior point)."""
    h = highs_for(lp.c, lp.A, lp.row_lo, lp.row_hi, lp.col_lo, lp.col_hi, time_limit)
    if interior:
        h.setOptionValue("solver", "ipm")
    if interior or crossover:
        h.setOptionValue("run_crossover", "on")
    if basis is not None:
        h.setOptionValue("solver", "simplex")
        h.setBasis(basis)
    h.run()
    return h


def _has_solution(h: highspy.Highs) -> bool:
    """A feasible primal solution with valid duals (what the prices are read from)."""
    return h.getInfo().primal_solution_status == 2 and h.getSolution().dual_valid


def _reduced_cost_sign(lp: OccupancyLP, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The row duals with the sign for which c - A^T y is the reduced cost (zero on columns strictly inside
    their bounds)."""
    inside = (x > lp.col_lo + 1e-7) & (x < lp.col_hi - 1e-7)
    if not inside.any():
        return y
    errs = [np.abs((lp.c - lp.A.T @ cand)[inside]).mean() for cand in (y, -y)]
    return y if errs[0] <= errs[1] else -y


def decision_table(values: np.ndarray, structure: ControlStructure, states: np.ndarray, t: int) -> np.ndarray:
    """(J, V): exact step reward + priced continuation at step index ``t`` of ``values``' horizon."""
    s = np.asarray(states, dtype=np.int64)
    arm = np.arange(len(s))
    cont = structure.next_value(values[:, t + 1])  # (J, S, V)
    table = structure.reward[arm, s] + cont[arm, s]
    return np.where(structure.available_at(s), table, -np.inf)


class LagrangianPlanner(Planner):
    name = "lagrangian"

    def _fit(self) -> None:
        lp = build_occupancy_lp(self.instance, self.model, training=False)
        self._values, _ = lagrangian_values(lp, self.structure)

    def table(self, states: np.ndarray, time_to_go: int) -> np.ndarray:
        self.fit()
        check_time_to_go(time_to_go, self.instance.horizon)
        return decision_table(self._values, self.structure, states, self.instance.horizon - int(time_to_go))

    def tables(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        self.fit()
        check_time_to_go(time_to_go, self.instance.horizon)
        s = np.atleast_2d(np.asarray(states, dtype=np.int64))
        t = self.instance.horizon - np.broadcast_to(np.asarray(time_to_go, dtype=np.int64), (len(s),))
        st = self.structure
        arm = np.arange(s.shape[1])[None, :]
        table = st.reward[arm, s] + st.next_value_at(self._values[:, t + 1], s)
        return np.where(st.available_at(s), table, -np.inf)
