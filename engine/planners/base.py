"""What every planner is: per-arm action values at a state, maximised jointly over the feasible set.

A planner needs no training. ``table(states, time_to_go)`` gives each arm's value of each of its control
values (J, V); the joint action maximises their sum over the domain's ActionModel (a MILP, exact to
``mip_rel_gap``). The same table, linearised in the action, is the planner prior of the learned Q
(:mod:`engine.planners.prior`).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from engine.planners.arm_values import ControlStructure, joint_values
from engine.planners.objective import first_order, objective_milp
from scenarios.cormab.instance import CoRMABInstance
from scenarios.errors import InvalidInputError
from solvers.milp import MatrixMILP


class PlannerTimeLimitError(RuntimeError):
    """A planner's per-decision solve (LP-update's LP) did not finish by the decision's deadline."""


def remaining_seconds(deadline: float) -> float:
    """Seconds left until ``deadline`` (``time.perf_counter()`` seconds); raises :class:`PlannerTimeLimitError` when
    none are left."""
    left = deadline - time.perf_counter()
    if left <= 0:
        raise PlannerTimeLimitError("the decision's time limit passed")
    return left


def check_time_to_go(time_to_go: np.ndarray | int, horizon: int) -> None:
    """Refuse times to go outside 1..horizon (table indices would wrap round silently), naming the field."""
    h = np.asarray(time_to_go)
    if h.size and (h.min() < 1 or h.max() > horizon):
        raise InvalidInputError("time_to_go", f"must lie in [1, {horizon}], got {time_to_go!r}")


class Planner:
    """Base class: subclasses set ``name`` and implement :meth:`fit` and :meth:`table`."""

    name: ClassVar[str] = "planner"
    #: a planner that re-solves per decision is too slow to serve as a training prior
    can_be_prior: ClassVar[bool] = True
    #: the options the planner takes (anything else is refused, naming it)
    option_names: ClassVar[tuple[str, ...]] = ()
    #: the planner that stands in (as a method or a prior) where this one does not apply to an instance
    fallback: ClassVar[str | None] = None
    #: ``time.perf_counter()`` by which a per-decision solve must finish (set by the deciding policy; None: no limit)
    deadline: float | None = None

    @classmethod
    def applies(cls, instance: CoRMABInstance) -> bool:
        """Whether the planner can decide on ``instance`` (the evaluation, sweep and prior method sets offer it only
        then). Every instance by default."""
        return True

    def __init__(self, instance: CoRMABInstance, **options: Any) -> None:
        if not isinstance(instance, CoRMABInstance):
            raise InvalidInputError(
                "scenario",
                f"planners need an allocation scenario (restless arms under a feasible "
                f"set); got {type(instance).__name__}",
            )
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            known = ", ".join(self.option_names) or "none"
            raise InvalidInputError(unknown[0], f"not an option of the {self.name!r} planner (its options: {known})")
        self.instance = instance
        self.options = dict(options)
        self.structure = ControlStructure.of(instance)
        self.model = instance.action_model()
        self._fitted = False

    def fit(self) -> Planner:
        """Precompute what every decision needs (indices, multipliers); idempotent."""
        if not self._fitted:
            self._fit()
            self._fitted = True
        return self

    def _fit(self) -> None:
        """Subclass hook for :meth:`fit`."""

    def table(self, states: np.ndarray, time_to_go: int) -> np.ndarray:
        """(J, V) value of each arm's control values at ``states`` (J,) with ``time_to_go`` steps left."""
        raise NotImplementedError

    def tables(self, states: np.ndarray, time_to_go: np.ndarray | int) -> np.ndarray:
        """Tables of a batch of states (B, J) -> (B, J, V); ``time_to_go`` scalar or (B,)."""
        states = np.atleast_2d(np.asarray(states, dtype=np.int64))
        ttg = np.broadcast_to(np.asarray(time_to_go, dtype=np.int64), (len(states),))
        return (
            np.stack([self.table(s, int(h)) for s, h in zip(states, ttg, strict=True)])
            if len(states)
            else np.zeros((0, *self.structure.values.shape))
        )

    # ------------------------------------------------------------------ derived views of the table
    def milp(self, states: np.ndarray, time_to_go: int) -> MatrixMILP:
        """The decision MILP at one state (entries unavailable in ``states`` fixed at 0)."""
        milp = objective_milp(self.model, self.fit().table(states, time_to_go), self.structure)
        if self.instance.state_dependent:
            n = self.instance.n_actions
            milp.col_upper[:n][self.instance.unavailable_entries(np.asarray(states, dtype=np.int64))] = 0.0
        return milp

    def score(self, states: np.ndarray, time_to_go: int, actions: np.ndarray) -> np.ndarray:
        """Planner objective of each action row (k, N) at one state."""
        return joint_values(self.fit().table(states, time_to_go), self.structure, np.atleast_2d(actions))

    def coefficients(self, states: np.ndarray, time_to_go: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """(gains (..., N), base (...)): the objective's line through a = 0 and each single action, for one
        state (J,) or a batch (B, J); exact for arm-pull domains."""
        states = np.asarray(states, dtype=np.int64)
        single = states.ndim == 1
        gains, base = first_order(self.fit().tables(np.atleast_2d(states), time_to_go), self.structure)
        return (gains[0], base[0]) if single else (gains, base)

    def config(self) -> dict[str, Any]:
        """JSON-able options that rebuild this planner on the same instance."""
        return {"name": self.name, **self.options}
