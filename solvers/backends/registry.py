"""Back-end registry: name -> factory of a :class:`~solvers.milp.MatrixMILP` solver with
``solve(milp, time_limit=, mip_rel_gap=, warm_start=) -> Solution``. A new back-end is one file + one line, or,
from another package, one entry point in the group ``redwood.backends`` (``name = "package.module:SolverClass"``),
merged into :data:`BACKENDS` (without importing it) by :func:`load_plugins`."""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from engine.protocols import MilpBackend
    from solvers.backends.highs import HighsSolver

#: how a caller names the back-end it solves with: a registered name, or a solver object it built itself
Backend: TypeAlias = "str | MilpBackend"

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


def resolve_backend(
    backend: Backend = "highs", highs_args: Mapping[str, object] | None = None, **options: object
) -> MilpBackend:
    """The solver a MILP-solving class holds: ``backend`` a registered name (built by :func:`make_backend` with
    ``options``, e.g. ``mip_rel_gap``) or a solver object satisfying the back-end protocol (returned as it is:
    the caller configured it, so ``options`` are not applied; pass per-solve settings to ``solve``).

    ``highs_args`` are further keyword arguments of :class:`~solvers.backends.highs.HighsSolver` (its typed
    ``mip_allow_restart`` and ``seed``, or raw HiGHS ``options`` such as ``{"presolve": "off"}``): tuning or
    workarounds for HiGHS alone, applied when the name resolves to ``HighsSolver`` and ignored for other
    back-ends."""
    if not isinstance(backend, str):
        if not callable(getattr(backend, "solve", None)):
            from scenarios.errors import InvalidInputError

            raise InvalidInputError("backend", f"a back-end name or an object with solve(milp, ...); got {backend!r}")
        return backend
    from solvers.backends.highs import HighsSolver

    if highs_args and _resolve(backend) is HighsSolver:
        options = {**options, **highs_args}
    return make_backend(backend, **options)


def require_highs(solver: object, feature: str) -> HighsSolver:
    """``solver`` when it is the HiGHS back-end; a clear error naming ``feature`` (a HiGHS-only capability, such
    as hot-started LP re-solves or HiGHS's dual bound without an incumbent) otherwise."""
    from solvers.backends.highs import HighsSolver

    if not isinstance(solver, HighsSolver):
        from scenarios.errors import InvalidInputError

        name = getattr(solver, "name", type(solver).__name__)
        raise InvalidInputError("backend", f"{feature} needs the 'highs' back-end (HiGHS only); got {name!r}")
    return solver


def is_persistent(solver: object) -> bool:
    """Whether a back-end keeps one model between solves (its class sets ``persistent = True``): then a MILP of
    the same structure is best passed whole, since only values change; others solve a pruned copy."""
    return bool(getattr(type(solver), "persistent", False))
