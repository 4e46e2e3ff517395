"""Trainer registry: the configuration's type picks the learning algorithm, the environment's family picks
the default configuration.

``Engine.train(env, config)`` dispatches through :func:`train`; a new learner is one file with a
``train(env, config, seed, progress) -> Policy`` function plus one line in :data:`TRAINERS` (and one in
:data:`FAMILY_CONFIGS` when it is a family's default).
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.protocols import IntegerBoxEnvironment, Policy
from scenarios.errors import InvalidInputError

#: config class path -> train function path (imported on first use: the actor-critic pulls in scipy.stats)
TRAINERS: dict[str, str] = {
    "engine.sequoia.dqn_config:DQNConfig": "engine.engine:train_dqn",
    "engine.dnc.config:ActorCriticConfig": "engine.dnc.training:train_actor_critic",
}

#: scenario family -> the config class its environments train with by default
FAMILY_CONFIGS: dict[str, str] = {
    "allocation": "engine.sequoia.dqn_config:DQNConfig",
    "box": "engine.dnc.config:ActorCriticConfig",
}


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def family(env: object) -> str:
    """``box`` for integer-box environments (inventory, maze), else ``allocation``."""
    return "box" if isinstance(getattr(env, "unwrapped", env), IntegerBoxEnvironment) else "allocation"


def config_class(env: object) -> type:
    """The configuration class the environment's family trains with by default."""
    return _load(FAMILY_CONFIGS[family(env)])


def config_path(config: object) -> str:
    cls = type(config)
    return f"{cls.__module__}:{cls.__qualname__}"


def train(env: object, config: object | None = None, seed: int = 0, progress: bool = True) -> Policy:
    """Train on ``env`` with the trainer registered for ``type(config)`` (None: the family's default)."""
    if config is None:
        config = config_class(env)()
    path = config_path(config)
    if path not in TRAINERS:
        known = ", ".join(p.rpartition(":")[2] for p in TRAINERS)
        raise InvalidInputError("config", f"no trainer for {type(config).__name__}; known configs: {known}")
    return _load(TRAINERS[path])(env, config, seed=seed, progress=progress)
