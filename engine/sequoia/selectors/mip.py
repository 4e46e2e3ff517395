"""MIP selector: the Q-network embedded in a MILP over the feasible set, solved exactly by a MILP back-end.

Anytime: one deadline per decision (``time_limit``) covers the greedy incumbent, the bound tightening and
the solve. The greedy answer (:func:`~engine.sequoia.selectors.greedy.greedy_ascent`) is the warm start and the
fallback: the returned action is never worse than it under Q, and a decision always comes back, flagged
``heuristic`` if the solver produced nothing usable (or failed). The decision carries the incumbent's
value, the certified bound, the gap and the status (``optimal`` within ``mip_rel_gap``, ``time_limit``,
``heuristic``).

One persistent model per selector: per decision the compiler refills right-hand sides, bounds and big-M
coefficients for the state. ``backend`` is a name of :data:`solvers.backends.registry.BACKENDS` accepting continuous
columns (``highs`` default and ``pyomo`` are persistent and get the full MILP; ``scip``/``cbc`` are rebuilt
per solve and get it with the fixed columns pruned). ``tightening`` is ``"interval"`` (per-state interval
bounds) or ``"lp"`` (plus LP-based bound tightening within ``tightening_budget`` seconds, capped at a third
of the deadline).
"""

from __future__ import annotations

import time

import numpy as np

from engine.decision import Decision
from engine.sequoia.selectors.greedy import greedy_ascent
from engine.sequoia.state_q import StateQ
from solvers.backends.registry import NETWORK_BACKENDS, make_backend
from solvers.formulations.network_milp import TIGHTENING_MODES, NetworkMILP
from solvers.solution import HEURISTIC, OPTIMAL, TIME_LIMIT, Solution, relative_gap

#: HiGHS settings for network MILPs: no MIP restarts (HiGHS 1.14 returned "optimal" sub-optimal points with
#: them on tiny big-M models), and no root sub-MIP / reduced-cost heuristics: the greedy incumbent is passed
#: as a warm start, and on the small embedded networks these heuristics cost more than the search they save
NETWORK_HIGHS_OPTIONS: dict[str, object] = {
    "mip_allow_restart": False,
    "mip_heuristic_run_rins": False,
    "mip_heuristic_run_rens": False,
    "mip_heuristic_run_root_reduced_cost": False,
}


def box_bound(milp) -> float:
    """An upper bound on a maximisation MILP's optimum: its objective maximised over the column box alone (for a
    network MILP the hidden columns' boxes are the interval bounds of the neurons, so this is the interval
    bound of the network's output plus the best linear term over the action box). Infinite when unbounded."""
    c = np.asarray(milp.c, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):  # 0 * inf in the branch np.where discards
        best = np.where(c > 0, c * milp.col_upper, np.where(c < 0, c * milp.col_lower, 0.0))
    total = float(best.sum()) + float(milp.offset)
    return total if np.isfinite(total) else float("inf")


class MipSelector:
    name = "mip"

    def __init__(
        self,
        mip_rel_gap: float = 0.01,
        time_limit: float | None = 10.0,
        backend: str = "highs",
        tightening: str = "interval",
        tightening_budget: float = 0.05,
        highs_options: dict[str, object] | None = None,
    ) -> None:
        """``highs_options`` replace :data:`NETWORK_HIGHS_OPTIONS` for the ``highs`` back-end."""
        if backend not in NETWORK_BACKENDS:
            raise ValueError(f"backend must be one of {NETWORK_BACKENDS} for network MILPs, got {backend!r}")
        if tightening not in TIGHTENING_MODES:
            raise ValueError(f"tightening must be one of {TIGHTENING_MODES}, got {tightening!r}")
        self.mip_rel_gap, self.time_limit = mip_rel_gap, time_limit
        self.backend, self.tightening, self.tightening_budget = backend, tightening, tightening_budget
        options: dict = {"mip_rel_gap": mip_rel_gap}
        if backend == "highs":
            options["options"] = dict(NETWORK_HIGHS_OPTIONS if highs_options is None else highs_options)
        self._solver = make_backend(backend, **options)
        self._compiled: NetworkMILP | None = None
        self._key: tuple | None = None
        self.last_stable_counts: dict | None = None
        self.last_tightening = None
        self.last_solution: Solution | None = None

    def _network_milp(self, q: StateQ) -> NetworkMILP:
        key = (id(q.model), id(q.network), q.version)
        if self._key != key:
            self._compiled = NetworkMILP(q.relu_network(), q.model.milp(np.zeros(q.model.n_actions)))
            self._key = key
        assert self._compiled is not None
        return self._compiled

    def _solve(self, milp, warm, limit: float | None) -> tuple[Solution, np.ndarray | None]:
        """Solve with the back-end; returns the solution and its full variable vector (None when none)."""
        if self.backend in ("highs", "pyomo"):  # persistent: the same structure every state
            sol = self._solver.solve(milp, time_limit=limit, mip_rel_gap=self.mip_rel_gap, warm_start=warm)
            return sol, sol.x
        small, kept = milp.pruned()
        hint = warm[kept] if isinstance(warm, np.ndarray) else None
        sol = self._solver.solve(small, time_limit=limit, mip_rel_gap=self.mip_rel_gap, warm_start=hint)
        if sol.x is None:
            return sol, None
        x = milp.col_lower.copy()
        x[kept] = sol.x
        return sol, x

    def select(self, q: StateQ, time_limit: float | None = None) -> Decision:
        start = time.perf_counter()
        limit = time_limit if time_limit is not None else self.time_limit
        incumbent, incumbent_value = greedy_ascent(q.model, q.score)

        def remaining() -> float | None:
            return None if limit is None else max(limit - (time.perf_counter() - start), 1e-3)

        sol, candidate, certified, milp = None, None, False, None
        try:
            compiled = self._network_milp(q)
            budget = self.tightening_budget
            if limit is not None:
                budget = min(budget, remaining() / 3.0)
            milp = compiled.build(
                q.first_bias,
                first_weights=q.first_weights,
                tightening=self.tightening,
                tightening_budget=budget,
                linear=q.linear,
                offset=q.offset,
            )
            self.last_stable_counts = compiled.stable_counts._asdict()
            self.last_tightening = compiled.tightening_report
            aux = q.model.certificate(incumbent)
            warm = compiled.warm_start(incumbent, aux) if aux is not None else compiled.partial_warm_start(incumbent)
            sol, x = self._solve(milp, warm, remaining())
            if x is not None:
                candidate = compiled.decode(x)
                n, n_feasible = q.model.n_actions, compiled.feasible.n_cols
                certified = q.model.feasible_with(candidate, x[n:n_feasible]) or q.model.is_feasible(candidate)
        except Exception:
            sol, candidate = None, None
        self.last_solution = sol
        action, value, status = incumbent, incumbent_value, HEURISTIC
        if sol is not None and candidate is not None and certified:
            candidate_value = float(q.score(candidate)[0])
            if candidate_value >= incumbent_value - 1e-9:
                action, value = candidate, candidate_value
            status = OPTIMAL if sol.status == OPTIMAL else TIME_LIMIT
        bound = float("inf")
        if sol is not None and status != HEURISTIC and np.isfinite(sol.bound):
            bound = sol.bound
        if milp is not None and sol is not None and status != OPTIMAL:
            # the solver stopped (time limit) before proving a bound, or with a weak one: the network's interval
            # bounds over the action box also certify one (max of the objective over the MILP's column box)
            bound = min(bound, box_bound(milp))
            if np.isfinite(bound) and status == HEURISTIC:
                status = TIME_LIMIT  # the greedy incumbent, with a certified (if loose) bound
        if np.isfinite(bound):
            bound = max(bound, value)
            gap = relative_gap(value, bound)
        else:
            bound, gap = float("inf"), float("inf")
        if status == OPTIMAL and gap > self.mip_rel_gap + 1e-9:
            status = TIME_LIMIT
        return Decision(action, value, bound, gap, status, time.perf_counter() - start, self.name)
