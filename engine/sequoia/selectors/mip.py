"""MIP selector: the Q-network embedded in a MILP over the feasible set, solved exactly by a MILP back-end.

Fast exact path first: when interval bounds prove every hidden neuron stable at the state, Q is affine in the
action (:func:`~engine.sequoia.selectors.affine.affine_form`) and, when the feasible set declares a structure
with an exact combinatorial oracle (:mod:`solvers.oracles`), that oracle maximises it; the decision's
``reason`` names the oracle (an oracle stopped by the deadline returns its incumbent, status ``time_limit``,
with its bound: valid for Q, which is that affine function on the feasible set). Otherwise the MILP below.

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

import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from engine.decision import Decision
from engine.planners.objective import penalised_gains
from engine.sequoia.selectors.affine import affine_form
from engine.sequoia.selectors.greedy import greedy_ascent
from engine.sequoia.state_q import StateQ
from solvers.backends.registry import NETWORK_BACKENDS, Backend, is_persistent, resolve_backend
from solvers.formulations.network_milp import TIGHTENING_MODES, NetworkMILP, max_cardinality
from solvers.formulations.relu_network import ReluNetwork
from solvers.oracles import LinearOracle, oracle_for
from solvers.solution import HEURISTIC, OPTIMAL, TIME_LIMIT, Solution, relative_gap

if TYPE_CHECKING:
    from solvers.formulations.bound_tightening import TighteningReport

logger = logging.getLogger(__name__)

#: What a back-end raises when it cannot take or solve a model (e.g. CP-SAT refuses continuous columns with
#: ValueError; highspy and pyomo report failures as RuntimeError): the decision falls back to the greedy answer
SOLVER_ERRORS: tuple[type[Exception], ...] = (RuntimeError, ValueError)

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


#: Default relative gap: HiGHS's own default. At 1e-2, "optimal" MILP decisions came back up to 0.54% below the
#: enumerated optimum on 24 of 60 J = 20 capacity states (issue 18), and 2 of 29 up to 0.98% below on the
#: bench_oracles capacity engine; at 1e-4 (and 1e-6) none were, at the same median MILP time (48 ms capacity,
#: 26-34 ms scheduling, the MILP path alone on the same states)
DEFAULT_MIP_REL_GAP = 1e-4


#: Q is evaluated in float32 (torch) while the solvers and oracles work in float64: relative gaps below this
#: between a decision's value and its float64 bound are evaluation noise, not optimisation slack
SCORE_RTOL = 1e-6


class MipSelector:
    name = "mip"

    def __init__(
        self,
        mip_rel_gap: float = DEFAULT_MIP_REL_GAP,
        time_limit: float | None = 10.0,
        backend: Backend = "highs",
        tightening: str = "interval",
        tightening_budget: float = 0.05,
        highs_options: dict[str, object] | None = None,
        oracle: bool = True,
    ) -> None:
        """``backend``: a registered name that accepts continuous columns (:data:`NETWORK_BACKENDS`) or a solver
        object (the caller configured it); ``highs_options`` replace :data:`NETWORK_HIGHS_OPTIONS` when the name
        resolves to HiGHS; ``oracle=False`` always solves the MILP (no combinatorial oracle even where the network
        is affine)."""
        if isinstance(backend, str) and backend not in NETWORK_BACKENDS:
            raise ValueError(f"backend must be one of {NETWORK_BACKENDS} for network MILPs, got {backend!r}")
        if tightening not in TIGHTENING_MODES:
            raise ValueError(f"tightening must be one of {TIGHTENING_MODES}, got {tightening!r}")
        self.mip_rel_gap, self.time_limit = mip_rel_gap, time_limit
        self.backend, self.tightening, self.tightening_budget = backend, tightening, tightening_budget
        highs_args = {"options": dict(NETWORK_HIGHS_OPTIONS if highs_options is None else highs_options)}
        self._solver = resolve_backend(backend, highs_args=highs_args, mip_rel_gap=mip_rel_gap)
        self.use_oracle = oracle
        self._compiled: NetworkMILP | None = None
        self._key: tuple | None = None
        self._oracle_key: int | None = None
        self._oracle: LinearOracle | None = None
        self._max_ones: int | None = None
        self._relu_key: tuple | None = None
        self._relu: ReluNetwork | None = None
        self.last_stable_counts: dict | None = None
        self.last_tightening: TighteningReport | None = None
        self.last_solution: Solution | None = None

    def _network_milp(self, q: StateQ) -> NetworkMILP:
        key = (q.model.uid, q.network.uid, q.version)
        if self._key != key:
            self._compiled = NetworkMILP(q.relu_network(), q.model.milp(np.zeros(q.model.n_actions)))
            self._key = key
        assert self._compiled is not None
        return self._compiled

    def _oracle_for(self, q: StateQ) -> LinearOracle | None:
        """The model's exact combinatorial oracle (None when it declares no structure with one), and the
        cardinality bound that the interval bounds use, both once per model."""
        key = q.model.uid
        if self._oracle_key != key:
            self._oracle = oracle_for(q.model) if self.use_oracle else None
            self._max_ones = None
            if self._oracle is not None:
                try:
                    self._max_ones = max_cardinality(q.model.milp(np.zeros(q.model.n_actions)), q.model.n_actions)
                except ValueError:  # an empty feasible set: leave it to the MILP path, which reports it
                    self._oracle = None
            self._oracle_key = key
        return self._oracle

    def _select_by_oracle(self, q: StateQ, start: float, limit: float | None) -> tuple[Decision | None, str]:
        """The oracle's decision when Q is affine at this state (``time_limit`` with the oracle's bound when it
        stopped before proving its incumbent); else None and the reason the MILP path is taken ("" when no
        oracle applies)."""
        oracle = self._oracle_for(q)
        if oracle is None:
            return None, ""
        key = (q.network.uid, q.version)
        if self._relu is None or self._relu_key != key:  # the network as numpy arrays, once per weights version
            self._relu, self._relu_key = q.relu_network(), key
        form = affine_form(self._relu, q.first_bias, q.first_weights, self._max_ones)
        if form is None:
            return None, ""
        w, c = form
        if q.linear is not None:
            w = w + np.asarray(q.linear, dtype=float)
            c += float(q.offset)
        if q.closed is not None:  # unavailable entries: a penalty no exact argmax over a downward-closed set takes
            if not q.model.downward_closed:
                return None, ""
            w, _ = penalised_gains(np.where(q.closed, -np.inf, w))
        left = None if limit is None else max(limit - (time.perf_counter() - start), 1e-3)
        kind = q.model.structure.kind if q.model.structure is not None else "?"
        try:
            sol = oracle.maximise(w, c, time_limit=left)
        except RuntimeError as exc:
            logger.warning("%s oracle failed, solving the MILP instead: %s", kind, exc)
            return None, f"{kind} oracle failed ({exc}); MILP"
        self.last_solution = sol
        n = q.model.n_actions
        if sol.x is None or not q.model.feasible_with(np.round(sol.x[:n]), sol.x[n:]):
            return None, f"{kind} oracle returned no certified action ({sol.status}); MILP"
        action = np.round(sol.x[:n]).astype(np.int64)
        if q.closed is not None and np.any(action[q.closed]):
            return None, f"{kind} oracle took an unavailable entry; MILP"
        value = float(q.score(action)[0])
        bound = max(float(sol.bound), value)  # Q is this affine function on the feasible set: its bound holds
        gap = relative_gap(value, bound)
        proven = sol.status == OPTIMAL and gap <= self.mip_rel_gap + SCORE_RTOL
        status = OPTIMAL if proven else TIME_LIMIT
        reason = f"network affine at this state: exact {kind} oracle"
        if sol.status != OPTIMAL:
            reason += " stopped at the time limit (its incumbent and bound)"
        return Decision(action, value, bound, gap, status, time.perf_counter() - start, self.name, reason=reason), ""

    def _solve(self, milp, warm, limit: float | None) -> tuple[Solution, np.ndarray | None]:
        """Solve with the back-end; returns the solution and its full variable vector (None when none)."""
        if is_persistent(self._solver):  # the same structure every state: only values change
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
        decision, reason = self._select_by_oracle(q, start, limit)
        if decision is not None:
            return decision
        incumbent, incumbent_value = greedy_ascent(q.model, q.score, closed=q.closed)

        def remaining() -> float | None:
            return None if limit is None else max(limit - (time.perf_counter() - start), 1e-3)

        sol, candidate, certified, milp = None, None, False, None
        try:
            compiled = self._network_milp(q)
            budget = self.tightening_budget
            left = remaining()
            if left is not None:
                budget = min(budget, left / 3.0)
            milp = compiled.build(
                q.first_bias,
                upper=q.action_upper,
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
        except SOLVER_ERRORS as exc:
            logger.warning("%s back-end failed on the network MILP; greedy answer kept: %s", self.backend, exc)
            failure = f"solver error ({type(exc).__name__}: {exc}); greedy answer"
            reason = f"{reason}; {failure}" if reason else failure
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
        if status == OPTIMAL and gap > self.mip_rel_gap + SCORE_RTOL:
            status = TIME_LIMIT
        return Decision(action, value, bound, gap, status, time.perf_counter() - start, self.name, reason=reason)
