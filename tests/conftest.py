"""Shared fixtures: small seeded instances, a briefly trained engine (cached per session), a REST service."""

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


@pytest.fixture
def rest(tmp_path):
    """A REST service on a fresh SQLite database: its test client and the admin key's headers."""
    from fastapi.testclient import TestClient

    from api.service import Settings, create_app

    key, db = "admin-key-for-tests-0123456789", tmp_path / "r.db"
    settings = Settings(db_url=f"sqlite:///{db}", policy_dir=tmp_path, secret="s3cret", bootstrap_key=key)
    with TestClient(create_app(settings)) as client:
        yield client, {"X-API-Key": key}
