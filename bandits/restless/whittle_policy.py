"""Whittle index policy: act on the arms (and levels) with the largest indices within the budget."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.restless.allocation import allocate
from bandits.restless.arms import RestlessArms
from bandits.restless.policy import RestlessPolicy, arms_arrays, arms_from_arrays, check_budget, check_states
from bandits.restless.whittle import WhittleIndices, whittle_indices
from scenarios.errors import InvalidInputError


class WhittlePolicy(RestlessPolicy):
    """Top-``budget`` by Whittle index (binary arms with unit costs); budget-greedy on upgrades otherwise.

    ``fill_budget`` spends the whole budget even on non-positive indices; by default only arms whose index
    is positive (acting beats the subsidy of staying passive) are acted on. Non-indexable arms raise
    ``InvalidInputError`` unless ``allow_non_indexable`` (then their unchecked roots are used).
    """

    kind = "whittle"

    def __init__(
        self,
        arms: RestlessArms,
        budget: float,
        discount: float = 0.95,
        horizon: int | None = None,
        fill_budget: bool = False,
        allow_non_indexable: bool = False,
        indices: WhittleIndices | None = None,
    ) -> None:
        self.arms = RestlessArms.parse(arms)
        self.budget = check_budget(budget)
        self.fill_budget = bool(fill_budget)
        self.allow_non_indexable = bool(allow_non_indexable)
        self.indices = indices if indices is not None else whittle_indices(self.arms, discount, horizon)
        if self.indices.non_indexable.size and not allow_non_indexable:
            bad = self.indices.non_indexable[:10].tolist()
            raise InvalidInputError("arms", f"arms {bad} are not indexable (set allow_non_indexable to use them)")
        self._table = self.indices.raw if allow_non_indexable else self.indices.values

    @property
    def discount(self) -> float:
        return self.indices.discount

    @property
    def horizon(self) -> int | None:
        return self.indices.horizon

    def scores(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        """Index of each arm's current state, shape states.shape + (levels,)."""
        s = check_states(states, self.arms.n_arms, self.arms.n_states)
        view = WhittleIndices(
            self._table, self.indices.raw, self.indices.indexable, self.discount, self.horizon, 0.0, 0
        )
        return view.at(s, time_to_go)

    def select(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        _, _, C, _ = self.arms.arrays()
        return allocate(self.scores(states, time_to_go), C, self.budget, fill=self.fill_budget)

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {
            "budget": self.budget,
            "discount": self.discount,
            "horizon": self.horizon,
            "fill_budget": self.fill_budget,
            "allow_non_indexable": self.allow_non_indexable,
        }
        arrays = arms_arrays(self.arms) | {"indices": self.indices.raw, "indexable": self.indices.indexable}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> WhittlePolicy:
        raw, ok = arrays["indices"], arrays["indexable"].astype(bool)
        values = raw.copy()
        values[~ok] = np.nan
        idx = WhittleIndices(values, raw, ok, meta["discount"], meta["horizon"], 0.0, 0)
        return cls(
            arms_from_arrays(arrays),
            meta["budget"],
            meta["discount"],
            meta["horizon"],
            meta["fill_budget"],
            meta["allow_non_indexable"],
            indices=idx,
        )
