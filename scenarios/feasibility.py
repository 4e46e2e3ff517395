"""What a feasible set's oracle offers (:class:`scenarios.action_model.ActionModel` consults it): exact answers
(:class:`FeasibilityOracle`) and, optionally, cheap ones (:class:`QuickFeasibility`)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class FeasibilityOracle(Protocol):
    """Fast exact answers for one feasible set; must agree with the ActionModel's rows."""

    def is_feasible(self, a: np.ndarray) -> bool: ...

    def sample(self, rng: np.random.Generator) -> np.ndarray: ...

    def certificate(self, a: np.ndarray) -> np.ndarray | None: ...


@runtime_checkable
class QuickFeasibility(Protocol):
    """An oracle that can also answer cheaply when it can: True / False, or None when only its expensive
    search would settle the question (the routing oracle's tour search over many nodes)."""

    def quick_feasible(self, a: np.ndarray) -> bool | None: ...


@runtime_checkable
class EnumerableOracle(Protocol):
    """An oracle that lists its feasible set directly (:meth:`ActionModel.enumerate`) and bounds its size
    (:meth:`ActionModel.count_upper_bound`): for sets that are not downward closed, where the generic
    enumeration would test every 0/1 vector."""

    def count_bound(self) -> int: ...

    def enumerate_all(
        self, max_count: int, closed: np.ndarray | None = None, deadline: float | None = None
    ) -> np.ndarray:
        """Every feasible action with none of the ``closed`` entries (a state's unavailable ones); ``ValueError``
        beyond ``max_count``, :class:`scenarios.errors.EnumerationTimeoutError` once ``time.perf_counter()``
        passes ``deadline`` (None: no time limit)."""
        ...
