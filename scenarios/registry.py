"""Scenario registry: a new scenario is one new file plus one line here, or, from another package, one entry
point in the group ``redwood.scenarios`` (``name = "package.module:InstanceClass"``).

Entries are import paths so that a scenario's dependencies load only when it is used. This module imports
nothing heavy and never imports a scenario module (nor its package) to answer :func:`available` or
:func:`summary` for the built-in scenarios, so that ``redwood scenarios`` and ``redwood --help`` start in a
fraction of a second (entry points are read from the installed distributions' metadata, not imported).
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path

SCENARIOS: dict[str, str] = {
    "capacity": "scenarios.cormab.capacity:CapacityInstance",
    "scheduling": "scenarios.cormab.scheduling:SchedulingInstance",
    "routing": "scenarios.cormab.routing:RoutingInstance",
    "multi_intervention": "scenarios.cormab.multi_intervention:MultiInterventionInstance",
    "inventory": "scenarios.boxes.inventory:InventoryInstance",
    "maze": "scenarios.boxes.maze:MazeInstance",
    "overlapping_reach": "scenarios.cormab.overlapping_reach:OverlappingReachInstance",
    "coverage": "scenarios.cormab.coverage:CoverageInstance",
    "budgeted": "scenarios.cormab.budgeted:BudgetedInstance",
    "switching": "scenarios.cormab.switching:SwitchingInstance",
    "pull_limits": "scenarios.cormab.pull_limits:PullLimitsInstance",
    "worker_budget": "scenarios.cormab.worker_budget:WorkerBudgetInstance",
    "patrol": "scenarios.cormab.patrol:PatrolInstance",
}

ENTRY_POINT_GROUP = "redwood.scenarios"

_PACKAGE = "scenarios"
_PACKAGE_DIR = Path(__file__).resolve().parent


def _module_file(module: str) -> Path | None:
    """The source file of a module, found without importing it (a plug-in's parent packages are imported to
    locate it; None: not found or not a Python source file)."""
    root, _, rest = module.partition(".")
    if root != _PACKAGE:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        origin = None if spec is None or spec.origin is None else Path(spec.origin)
        return origin if origin is not None and origin.suffix == ".py" else None
    if not rest:
        return None
    base = _PACKAGE_DIR.joinpath(*rest.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _present(module: str) -> bool:
    if module.partition(".")[0] == _PACKAGE:
        return _module_file(module) is not None
    return importlib.util.find_spec(module) is not None


@functools.lru_cache(maxsize=8)
def _entry_points(group: str, search_path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((ep.name, ep.value) for ep in entry_points(group=group))


def plugins() -> dict[str, str]:
    """Scenarios registered by other distributions (entry points of ``redwood.scenarios``); a built-in name
    is never overridden."""
    found = _entry_points(ENTRY_POINT_GROUP, tuple(sys.path))
    return {name: value for name, value in found if name not in SCENARIOS}


def registered() -> dict[str, str]:
    """Every scenario name -> ``module:InstanceClass``: the built-in ones, then the plug-ins."""
    return {**SCENARIOS, **plugins()}


def available() -> list[str]:
    """Registered names whose module is present."""
    return sorted(name for name, path in registered().items() if _present(path.split(":")[0]))


def resolve(name: str) -> type:
    module, _, attr = registered()[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def summary(name: str) -> str:
    """First line of the docstring of scenario ``name``'s instance class, read from its source without
    importing it (importing is the fallback when the class is not defined literally in that file)."""
    module, _, attr = registered()[name].partition(":")
    path = _module_file(module)
    if path is not None and path.is_file():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and node.name == attr:
                return (ast.get_docstring(node) or "").strip().partition("\n")[0]
    return (resolve(name).__doc__ or "").strip().partition("\n")[0]
