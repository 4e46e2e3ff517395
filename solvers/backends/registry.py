"""Back-end registry: name -> factory of a :class:`~solvers.milp.MatrixMILP` solver with
``solve(milp, time_limit=, mip_rel_gap=, warm_start=) -> Solution``. A new back-end is one file + one line, or,
from another package, one entry point in the group ``redwood.backends`` (``name = "package.module:SolverClass"``),
merged into :data:`BACKENDS` (without importing it) by :func:`load_plugins`."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from importlib.metadata import entry_points

BACKENDS: dict[str, tuple[str, dict]] = {
    "highs": ("solvers.backends.highs:HighsSolver", {}),
    "scip": ("solvers.backends.ortools:OrToolsSolver", {"backend": "SCIP"}),
    "cbc": ("solvers.backends.ortools:OrToolsSolver", {"backend": "CBC"}),
    "cpsat": ("solvers.backends.ortools:CpSatSolver", {}),
    "pyomo": ("solvers.backends.pyomo:PyomoSolver", {}),
}

#: back-ends that accept continuous columns (a network embedding); CP-SAT is pure-integer only
NETWORK_BACKENDS = ("highs", "scip", "cbc", "pyomo")


ENTRY_POINT_GROUP = "redwood.backends"


@functools.lru_cache(maxsize=8)
def _plugins(search_path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_plugins() -> dict[str, tuple[str, dict]]:
    """Add the back-ends other distributions register (built-in names are never overridden). Returns
    :data:`BACKENDS`."""
    for name, path in _plugins(tuple(sys.path)):
        BACKENDS.setdefault(name, (path, {}))
    return BACKENDS


def _resolve(name: str) -> Callable:
    load_plugins()
    if name not in BACKENDS:
        raise ValueError(f"unknown back-end {name!r}; known: {', '.join(sorted(BACKENDS))}")
    path, _ = BACKENDS[name]
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def make_backend(name: str, **options):
    """A fresh solver for back-end ``name`` (``options`` such as ``mip_rel_gap``, ``time_limit``)."""
    return _resolve(name)(**{**BACKENDS[name][1], **options})


def available_backends() -> list[str]:
    """Registered back-ends that can be constructed in this environment."""
    out = []
    for name in list(load_plugins()):
        try:
            make_backend(name)
        except (ImportError, ValueError):
            continue
        out.append(name)
    return out
