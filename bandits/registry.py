"""Bandit registry: policy kind -> class (restless and combinatorial). A new bandit is one file plus one line
here, or, from another package, one entry point in the group ``redwood.bandits``
(``name = "package.module:PolicyClass"``), read from the distributions' metadata without importing it.

Entries are import paths, so listing the kinds imports no policy (the neural ones pull in torch).
"""

from __future__ import annotations

import functools
import importlib
import sys
from importlib.metadata import entry_points

from scenarios.errors import InvalidInputError

BANDITS: dict[str, str] = {
    "whittle": "bandits.restless.whittle_policy:WhittlePolicy",
    "lagrangian": "bandits.restless.lagrangian_policy:LagrangianPolicy",
    "learning_whittle": "bandits.restless.learning:LearningWhittlePolicy",
    "whittle_repair": "bandits.restless.repair_policy:WhittleRepairPolicy",
    "cucb": "bandits.combinatorial.cucb:CUCB",
    "combinatorial_thompson": "bandits.combinatorial.thompson:CombinatorialThompson",
    "lin_ucb": "bandits.combinatorial.linear:LinUCB",
    "linear_thompson": "bandits.combinatorial.linear:LinearThompson",
    "neural_ucb": "bandits.combinatorial.neural:NeuralUCB",
    "neural_thompson": "bandits.combinatorial.neural:NeuralThompson",
}

ENTRY_POINT_GROUP = "redwood.bandits"


@functools.lru_cache(maxsize=8)
def _plugins(search_path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP))


def registered() -> dict[str, str]:
    """Every bandit kind -> ``module:Class``: the built-in ones, then the plug-ins (never overriding one)."""
    plugins = {name: path for name, path in _plugins(tuple(sys.path)) if name not in BANDITS}
    return {**BANDITS, **plugins}


def bandit_kinds() -> list[str]:
    return list(registered())


def bandit_class(kind: str) -> type:
    """The policy class of ``kind`` (imported now)."""
    paths = registered()
    if kind not in paths:
        raise InvalidInputError("kind", f"unknown bandit {kind!r}; known: {', '.join(paths)}")
    module, _, attr = paths[kind].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_bandit(kind: str, *args: object, **kwargs: object) -> object:
    """A new policy of ``kind`` built with its constructor's arguments (e.g. an oracle and a seed)."""
    return bandit_class(kind)(*args, **kwargs)
