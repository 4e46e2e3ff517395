"""Action selectors: each maximises Q(s, .) over the feasible set; a new selector is one file + one line."""

from __future__ import annotations

from engine.selectors.auto import AutoSelector
from engine.selectors.enumerate import EnumerateSelector
from engine.selectors.greedy import GreedySelector, greedy_ascent
from engine.selectors.mip import MipSelector
from engine.selectors.sampling import SamplingSelector

SELECTORS: dict[str, type] = {
    "mip": MipSelector,
    "enumerate": EnumerateSelector,
    "greedy": GreedySelector,
    "sampling": SamplingSelector,
    "auto": AutoSelector,
}

__all__ = [
    "SELECTORS", "AutoSelector", "EnumerateSelector", "GreedySelector", "MipSelector", "SamplingSelector",
    "greedy_ascent",
]
