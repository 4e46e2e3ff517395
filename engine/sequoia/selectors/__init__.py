"""Action selectors: each maximises Q(s, .) over the feasible set; a new selector is one file + one line, or,
from another package, one entry point in the group ``redwood.selectors`` (``name = "package.module:Class"``,
a :class:`engine.protocols.Selector`), merged into :data:`SELECTORS` by :func:`load_plugins`."""

from __future__ import annotations

import functools
import sys
from importlib.metadata import entry_points

from engine.sequoia.selectors.auto import AutoSelector
from engine.sequoia.selectors.enumerate import EnumerateSelector
from engine.sequoia.selectors.greedy import GreedySelector, greedy_ascent
from engine.sequoia.selectors.mip import MipSelector
from engine.sequoia.selectors.sampling import SamplingSelector

SELECTORS: dict[str, type] = {
    "mip": MipSelector,
    "enumerate": EnumerateSelector,
    "greedy": GreedySelector,
    "sampling": SamplingSelector,
    "auto": AutoSelector,
}

ENTRY_POINT_GROUP = "redwood.selectors"


@functools.lru_cache(maxsize=8)
def _plugins(search_path: tuple[str, ...]) -> tuple[tuple[str, type], ...]:
    return tuple((ep.name, ep.load()) for ep in entry_points(group=ENTRY_POINT_GROUP))


def load_plugins() -> dict[str, type]:
    """Add the selectors other distributions register (built-in names are never overridden); cheap when
    ``sys.path`` has not changed since the last call. Returns :data:`SELECTORS`."""
    for name, cls in _plugins(tuple(sys.path)):
        SELECTORS.setdefault(name, cls)
    return SELECTORS


load_plugins()

__all__ = [
    "SELECTORS",
    "AutoSelector",
    "EnumerateSelector",
    "GreedySelector",
    "MipSelector",
    "SamplingSelector",
    "greedy_ascent",
    "load_plugins",
]
