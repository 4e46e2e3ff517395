"""Planners: index and LP policies that need no training (Whittle, Lagrangian, LP-update).

A new planner is one file with a :class:`~engine.planners.base.Planner` subclass plus one line here.
"""

from __future__ import annotations

from engine.planners.base import Planner
from engine.planners.lagrangian import LagrangianPlanner
from engine.planners.lp_update import LPUpdatePlanner
from engine.planners.whittle import WhittlePlanner
from scenarios.errors import InvalidInputError

PLANNERS: dict[str, type[Planner]] = {cls.name: cls for cls in (WhittlePlanner, LagrangianPlanner, LPUpdatePlanner)}


def make_planner(name: str, instance, **options) -> Planner:
    """The planner ``name`` (a key of :data:`PLANNERS`) on ``instance``, fitted."""
    if name not in PLANNERS:
        raise InvalidInputError("planner", f"unknown planner {name!r}; known: {', '.join(PLANNERS)}")
    try:
        planner = PLANNERS[name](instance, **options)
    except TypeError as err:
        raise InvalidInputError("planner", f"{name}: {err}") from err
    return planner.fit()


__all__ = ["PLANNERS", "LPUpdatePlanner", "LagrangianPlanner", "Planner", "WhittlePlanner", "make_planner"]
