"""Policy-kind registry: the ``kind`` written in a checkpoint's ``config.json`` -> the class that loads it.

``Engine.load(path)`` dispatches through :func:`load`; checkpoints without a kind are DQN engines (the format
before kinds). A new policy kind is one class with ``save`` and a ``load(path)`` classmethod plus one line.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.checkpoint import read_checkpoint_meta
from engine.protocols import Policy
from scenarios.errors import InvalidInputError

#: kind -> "module:loader", a callable ``path -> Policy`` (imported on first use)
POLICY_KINDS: dict[str, str] = {
    "dqn": "engine.engine:Engine.load_dqn",
    "actor_critic": "engine.dnc.agent:ActorCriticAgent.load",
    "planner": "engine.planners.policy:PlannerPolicy.load",
    "bandit": "engine.bandit_policy:BanditPolicy.load",
    "lookahead": "engine.lookahead.policy:LookaheadPolicy.load",
}

#: kind -> "module:names", the selector names its policies accept
KIND_SELECTORS: dict[str, str] = {
    "dqn": "engine.sequoia.selectors:SELECTORS",
    "actor_critic": "engine.dnc.selectors:SELECTORS",
    "planner": "engine.planners.policy:PLANNER_SELECTORS",
    "bandit": "engine.bandit_policy:BANDIT_SELECTORS",
    "lookahead": "engine.lookahead.policy:LOOKAHEAD_SELECTORS",
}

DEFAULT_KIND = "dqn"


def _resolve(path: str) -> Any:
    module, _, attrs = path.partition(":")
    return functools.reduce(getattr, attrs.split("."), importlib.import_module(module))


def loader(kind: str) -> Callable[[str | Path], Policy]:
    """The function that loads checkpoints of ``kind``."""
    if kind not in POLICY_KINDS:
        raise InvalidInputError("kind", f"unknown policy kind {kind!r}; known: {', '.join(POLICY_KINDS)}")
    return _resolve(POLICY_KINDS[kind])


def selector_names(kinds: list[str] | None = None) -> list[str]:
    """The selector names the policies of ``kinds`` (default: every kind) accept, each once, in registry order."""
    names: dict[str, None] = {}
    for kind in kinds if kinds is not None else list(KIND_SELECTORS):
        names |= dict.fromkeys(_resolve(KIND_SELECTORS[kind]))
    return list(names)


def load(path: str | Path) -> Policy:
    """The policy stored in checkpoint directory ``path``, by its kind."""
    meta: dict[str, Any] = read_checkpoint_meta(path)
    return loader(str(meta.get("kind", DEFAULT_KIND)))(path)
