"""Planners: index and LP policies that need no training (Whittle, Lagrangian, action-law Lagrangian, LP-update).

A new planner is one file with a :class:`~engine.planners.base.Planner` subclass plus one line here, or, from
another package, one entry point in the group ``redwood.planners`` (``name = "package.module:PlannerClass"``),
merged into :data:`PLANNERS` by :func:`load_plugins`.
"""

from __future__ import annotations

import functools
import sys
from importlib.metadata import entry_points

from engine.planners.action_law import ActionLawPlanner
from engine.planners.base import Planner
from engine.planners.lagrangian import LagrangianPlanner
from engine.planners.lp_update import LPUpdatePlanner
from engine.planners.whittle import WhittlePlanner
from scenarios.errors import InvalidInputError

PLANNERS: dict[str, type[Planner]] = {
    cls.name: cls for cls in (WhittlePlanner, LagrangianPlanner, ActionLawPlanner, LPUpdatePlanner)
}

ENTRY_POINT_GROUP = "redwood.planners"


@functools.lru_cache(maxsize=8)
def _plugins(search_path: tuple[str, ...]) -> tuple[tuple[str, type[Planner]], ...]:
    return tuple((ep.name, ep.load()) for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_plugins() -> dict[str, type[Planner]]:
    """Add the planners other distributions register (built-in names are never overridden). Returns
    :data:`PLANNERS`."""
    for name, cls in _plugins(tuple(sys.path)):
        PLANNERS.setdefault(name, cls)
    return PLANNERS


def make_planner(name: str, instance, **options) -> Planner:
    """The planner ``name`` (a key of :data:`PLANNERS`) on ``instance``, fitted."""
    load_plugins()
    if name not in PLANNERS:
        raise InvalidInputError("planner", f"unknown planner {name!r}; known: {', '.join(PLANNERS)}")
    try:
        planner = PLANNERS[name](instance, **options)
    except TypeError as err:
        raise InvalidInputError("planner", f"{name}: {err}") from err
    return planner.fit()


__all__ = [
    "PLANNERS",
    "ActionLawPlanner",
    "LPUpdatePlanner",
    "LagrangianPlanner",
    "Planner",
    "WhittlePlanner",
    "load_plugins",
    "make_planner",
]


load_plugins()
