"""Back-end registry: name -> factory of a :class:`~solvers.milp.MatrixMILP` solver with
``solve(milp, time_limit=, mip_rel_gap=, warm_start=) -> Solution``. A new back-end is one file + one line."""

from __future__ import annotations

import importlib
from collections.abc import Callable

BACKENDS: dict[str, tuple[str, dict]] = {
    "highs": ("solvers.backends.highs:HighsSolver", {}),
    "scip": ("solvers.backends.ortools:OrToolsSolver", {"backend": "SCIP"}),
    "cbc": ("solvers.backends.ortools:OrToolsSolver", {"backend": "CBC"}),
    "cpsat": ("solvers.backends.ortools:CpSatSolver", {}),
    "pyomo": ("solvers.backends.pyomo:PyomoSolver", {}),
}

#: back-ends that accept continuous columns (a network embedding); CP-SAT is pure-integer only
NETWORK_BACKENDS = ("highs", "scip", "cbc", "pyomo")


def _resolve(name: str) -> Callable:
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
    for name in BACKENDS:
        try:
            make_backend(name)
        except (ImportError, ValueError):
            continue
        out.append(name)
    return out
