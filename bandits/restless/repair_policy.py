"""Whittle with repair: maximise the sum of the chosen arms' indices (each times its pull's marginal cost: an
index is a charge per unit of cost) over any ActionModel (a MILP; HiGHS by
default, or any registered back-end).

Each decision changes only the objective of one persistent HiGHS model. When the solver returns no
incumbent within the time limit, a greedy repair adds arms in index order while the set stays extendable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.action_models import action_model_from_state, action_model_state, prefixed, unprefixed
from bandits.restless.arms import RestlessArms
from bandits.restless.policy import RestlessPolicy, arms_arrays, arms_from_arrays, check_states
from bandits.restless.whittle import WhittleIndices, whittle_indices
from scenarios.action_model import ActionModel
from scenarios.errors import InvalidInputError
from solvers.backends.registry import Backend, resolve_backend
from solvers.solution import Solution


class WhittleRepairPolicy(RestlessPolicy):
    """Binary arms whose joint action must lie in ``action_model`` (one action entry per arm)."""

    kind = "whittle_repair"

    def __init__(
        self,
        arms: RestlessArms,
        action_model: ActionModel,
        discount: float = 0.95,
        horizon: int | None = None,
        time_limit: float = 10.0,
        mip_rel_gap: float = 1e-6,
        indices: WhittleIndices | None = None,
        backend: Backend = "highs",
    ) -> None:
        """``backend``: the MILP back-end, a registered name (saved with the policy) or a solver object."""
        self.arms = RestlessArms.parse(arms)
        if self.arms.n_actions != 2:
            raise InvalidInputError("arms", "repair under an ActionModel needs binary (passive/active) arms")
        if not isinstance(action_model, ActionModel) or action_model.n_actions != self.arms.n_arms:
            raise InvalidInputError("action_model", f"expected an ActionModel with {self.arms.n_arms} action entries")
        self.action_model = action_model
        self.time_limit = float(time_limit)
        self.mip_rel_gap = float(mip_rel_gap)
        self.indices = indices if indices is not None else whittle_indices(self.arms, discount, horizon)
        if self.indices.non_indexable.size:
            raise InvalidInputError("arms", f"arms {self.indices.non_indexable[:10].tolist()} are not indexable")
        C = self.arms.arrays()[2]
        self._pull_cost = C[:, 1] - C[:, 0]  # an index is a charge per unit of cost: a pull is worth index x cost
        self.backend = backend
        self._solver = resolve_backend(backend, mip_rel_gap=self.mip_rel_gap)
        self.last_solution: Solution | None = None
        self.last_repaired = False

    def select(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        s = check_states(states, self.arms.n_arms, self.arms.n_states)
        w = self.indices.at(s, time_to_go)[..., 0]
        if s.ndim == 2:
            return np.stack([self._solve(row) for row in w])
        return self._solve(w)

    def _solve(self, w: np.ndarray) -> np.ndarray:
        milp = self.action_model.milp(w * self._pull_cost)
        sol = self._solver.solve(milp, time_limit=self.time_limit, mip_rel_gap=self.mip_rel_gap)
        self.last_solution = sol
        if sol.x is not None:
            a = np.round(sol.x[: self.arms.n_arms]).astype(np.int64)
            if self.action_model.is_feasible(a):
                self.last_repaired = False
                return a
        self.last_repaired = True
        return self._greedy(w)

    def _greedy(self, w: np.ndarray) -> np.ndarray:
        """Fallback: add arms by decreasing positive index while the set stays extendable (then feasible)."""
        a = np.zeros(self.arms.n_arms, dtype=np.int64)
        for j in np.argsort(-w, kind="stable"):
            if w[j] <= 0:
                break
            a[j] = 1
            if not self.action_model.extendable(a):
                a[j] = 0
        if not self.action_model.is_feasible(a):
            return self.action_model.sample(np.random.default_rng(0))
        return a

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        am_meta, am_arrays = action_model_state(self.action_model)
        meta = {
            "discount": self.indices.discount,
            "horizon": self.indices.horizon,
            "time_limit": self.time_limit,
            "mip_rel_gap": self.mip_rel_gap,
            "backend": self.backend if isinstance(self.backend, str) else "highs",  # a solver object is not saved
            "action_model": am_meta,
        }
        arrays = arms_arrays(self.arms) | prefixed("am_", am_arrays)
        arrays |= {"indices": self.indices.raw, "indexable": self.indices.indexable}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> WhittleRepairPolicy:
        model = action_model_from_state(meta["action_model"], unprefixed("am_", arrays))
        raw, ok = arrays["indices"], arrays["indexable"].astype(bool)
        idx = WhittleIndices(
            np.where(ok.reshape((-1,) + (1,) * (raw.ndim - 1)), raw, np.nan),
            raw,
            ok,
            meta["discount"],
            meta["horizon"],
            0.0,
            0,
        )
        return cls(
            arms_from_arrays(arrays),
            model,
            meta["discount"],
            meta["horizon"],
            meta["time_limit"],
            meta["mip_rel_gap"],
            indices=idx,
            backend=str(meta.get("backend", "highs")),
        )
