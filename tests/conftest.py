"""Shared fixtures: small seeded instances and a briefly trained engine (cached per session)."""

from __future__ import annotations

import pytest
import torch

from engine import DQNConfig, Engine
from scenarios import make

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def small_env():
    return make("capacity", n_arms=10, budget=3, seed=1)


@pytest.fixture(scope="session")
def small_engine(small_env):
    """A short training run on J = 10 (seconds, not minutes): enough structure for the exactness tests."""
    config = DQNConfig(episodes=15, warm_start_samples=1024, warm_start_epochs=30)
    return Engine.train(small_env, config, seed=0, progress=False)
