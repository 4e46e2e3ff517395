"""Any ``ActionModel`` as an oracle: maximise weights @ a over its rows with a MILP back-end (persistent HiGHS by
default, or any registered back-end name or solver object).

Only the objective changes between calls, so HiGHS updates its model in place. A call is exact when the back-end
proves optimality within ``mip_rel_gap``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.action_models import action_model_from_state, action_model_state, prefixed, unprefixed
from bandits.combinatorial.oracles.base import Oracle
from scenarios.action_model import ActionModel
from scenarios.errors import InvalidInputError
from solvers.backends.registry import Backend, resolve_backend
from solvers.solution import OPTIMAL, Solution


class ActionModelOracle(Oracle):
    kind = "action_model"
    always_exact = False

    def __init__(
        self, action_model: ActionModel, time_limit: float = 10.0, mip_rel_gap: float = 1e-6, backend: Backend = "highs"
    ) -> None:
        """``backend``: a registered back-end name (saved with the oracle) or a solver object."""
        if not isinstance(action_model, ActionModel):
            raise InvalidInputError("action_model", f"expected an ActionModel, got {type(action_model).__name__}")
        self.action_model = action_model
        self.n_arms = action_model.n_actions
        self.time_limit, self.mip_rel_gap = float(time_limit), float(mip_rel_gap)
        self.backend = backend
        self._solver = resolve_backend(backend, mip_rel_gap=self.mip_rel_gap)
        self.last_solution: Solution | None = None

    def _solve(self, w: np.ndarray) -> tuple[np.ndarray, bool]:
        sol = self._solver.solve(self.action_model.milp(w), time_limit=self.time_limit, mip_rel_gap=self.mip_rel_gap)
        self.last_solution = sol
        if sol.x is None:
            raise RuntimeError(f"no feasible action found for {self.action_model.name!r} ({sol.status})")
        return np.round(sol.x[: self.n_arms]).astype(np.int64), sol.status == OPTIMAL

    def is_feasible(self, action: np.ndarray) -> bool:
        return self.action_model.is_feasible(np.asarray(action, dtype=np.int64))

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = action_model_state(self.action_model)
        backend = self.backend if isinstance(self.backend, str) else "highs"  # a solver object is not saved
        return (
            {
                "kind": self.kind,
                "time_limit": self.time_limit,
                "mip_rel_gap": self.mip_rel_gap,
                "backend": backend,
                "action_model": meta,
            },
            prefixed("am_", arrays),
        )

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ActionModelOracle:
        model = action_model_from_state(meta["action_model"], unprefixed("am_", arrays))
        return cls(model, meta["time_limit"], meta["mip_rel_gap"], str(meta.get("backend", "highs")))
