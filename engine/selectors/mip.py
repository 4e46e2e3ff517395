"""MIP selector: the Q-network embedded in a MILP over the feasible set, solved exactly by HiGHS.

One persistent HiGHS model per selector; per decision the compiler refills right-hand sides, bounds and
big-M coefficients for the state. The greedy answer is the warm start and the fallback: the returned
action is never worse than it, and a decision always comes back (flagged ``heuristic`` if the solver
produced nothing usable).
"""

from __future__ import annotations

import time

import numpy as np

from engine.decision import Decision
from engine.selectors.greedy import greedy_ascent
from engine.state_q import StateQ
from solvers.highs_backend import HighsSolver
from solvers.network_milp import NetworkMILP
from solvers.solution import HEURISTIC, OPTIMAL, TIME_LIMIT, relative_gap


class MipSelector:
    name = "mip"

    def __init__(self, mip_rel_gap: float = 0.01, time_limit: float | None = 10.0) -> None:
        self.mip_rel_gap = mip_rel_gap
        self.time_limit = time_limit
        self._solver = HighsSolver(mip_rel_gap=mip_rel_gap)
        self._compiled: NetworkMILP | None = None
        self._key: tuple | None = None
        self.last_stable_counts: dict | None = None

    def _network_milp(self, q: StateQ) -> NetworkMILP:
        key = (id(q.model), id(q.network), q.version)
        if self._key != key:
            self._compiled = NetworkMILP(q.relu_network(), q.model.milp(np.zeros(q.model.n_actions)))
            self._key = key
        assert self._compiled is not None
        return self._compiled

    def select(self, q: StateQ, time_limit: float | None = None) -> Decision:
        start = time.perf_counter()
        limit = time_limit if time_limit is not None else self.time_limit
        incumbent, incumbent_value = greedy_ascent(q.model, q.score)
        compiled = self._network_milp(q)
        milp = compiled.build(q.first_bias, first_weights=q.first_weights)
        self.last_stable_counts = compiled.stable_counts._asdict()
        aux = q.model.certificate(incumbent)
        warm = compiled.warm_start(incumbent, aux) if aux is not None else compiled.partial_warm_start(incumbent)
        remaining = None if limit is None else max(limit - (time.perf_counter() - start), 1e-3)
        sol = self._solver.solve(milp, time_limit=remaining, mip_rel_gap=self.mip_rel_gap, warm_start=warm)
        action, value, status = incumbent, incumbent_value, HEURISTIC
        if sol.x is not None:
            candidate = compiled.decode(sol.x)
            if q.model.is_feasible(candidate):
                candidate_value = float(q.score(candidate)[0])
                if candidate_value >= incumbent_value - 1e-9:
                    action, value = candidate, candidate_value
                status = OPTIMAL if sol.status == OPTIMAL else TIME_LIMIT
        bound = max(sol.bound, value) if np.isfinite(sol.bound) else float("inf")
        gap = relative_gap(value, bound) if status != HEURISTIC else float("inf")
        if status == OPTIMAL and gap > self.mip_rel_gap + 1e-9:
            status = TIME_LIMIT
        return Decision(action, value, bound, gap, status, time.perf_counter() - start, self.name)
