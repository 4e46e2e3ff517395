"""Action selectors: each maximises Q(s, .) over the feasible set; a new selector is one file + one line."""

from __future__ import annotations

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

__all__ = [
    "SELECTORS",
    "AutoSelector",
    "EnumerateSelector",
    "GreedySelector",
    "MipSelector",
    "SamplingSelector",
    "greedy_ascent",
]
