"""Common interface of restless policies: ``select`` / ``update`` / ``get_state`` / ``save`` / ``load``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bandits.persistence import load_state, save_state
from bandits.restless.arms import RestlessArms
from bandits.validation import as_index_array
from scenarios.errors import InvalidInputError


class RestlessPolicy:
    """Maps arm states (arms,) or a batch (episodes, arms) to actions of the same shape."""

    kind: ClassVar[str] = "restless"

    def select(self, states: np.ndarray, time_to_go: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def update(
        self, states: np.ndarray, actions: np.ndarray, next_states: np.ndarray, rewards: np.ndarray | None = None
    ) -> None:
        """Observe transitions; planning policies ignore them."""

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able metadata and numpy arrays that rebuild this policy exactly."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> RestlessPolicy:
        raise NotImplementedError

    def save(self, path: str | Path) -> Path:
        meta, arrays = self.get_state()
        return save_state(path, self.kind, meta, arrays)

    @classmethod
    def load(cls, path: str | Path) -> RestlessPolicy:
        _, meta, arrays = load_state(path, cls.kind)
        return cls.from_state(meta, arrays)


def arms_arrays(arms: RestlessArms) -> dict[str, np.ndarray]:
    P, R, C, init = arms.arrays()
    return {"transitions": P, "rewards": R, "costs": C, "initial": init}


def arms_from_arrays(arrays: dict[str, np.ndarray]) -> RestlessArms:
    return RestlessArms.from_arrays(arrays["transitions"], arrays["rewards"], arrays["costs"], arrays["initial"])


def check_states(states: object, n_arms: int, n_states: int) -> np.ndarray:
    s = as_index_array(states, "states", n_states)
    if s.ndim not in (1, 2) or s.shape[-1] != n_arms:
        raise InvalidInputError("states", f"expected shape ({n_arms},) or (episodes, {n_arms}), got {s.shape}")
    return s


def check_budget(budget: float) -> float:
    try:
        b = float(budget)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("budget", "expected a number") from exc
    if not np.isfinite(b) or b < 0:
        raise InvalidInputError("budget", f"expected a non-negative number, got {budget!r}")
    return b
