"""Fixtures: a policy directory with a small capacity checkpoint, database URLs (SQLite and PostgreSQL) and
an in-process app factory."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import torch

from tests.service.pg import Cluster, pg_bin

ADMIN = "rw_test_admin_key"


def make_checkpoint(path: Path, n_arms: int = 10, budget: int = 3, seed: int = 0) -> Path:
    """A capacity checkpoint with untrained (seeded) weights: enough for the service, instant to build."""
    from engine import Engine
    from engine.sequoia.dqn import make_encoder
    from engine.sequoia.q_network import QNetwork
    from scenarios import make

    env = make("capacity", n_arms=n_arms, budget=budget, seed=seed)
    enc = make_encoder(env.instance)
    torch.manual_seed(seed)
    net = QNetwork(env.instance.n_actions, enc.dim, (16, 32), enc.context_dim)
    return Engine(env.scenario, env.instance, net, training_summary={"note": "untrained test weights"}).save(path)


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("policies")
    make_checkpoint(root / "cap10")
    return root


@pytest.fixture(scope="session")
def pg_cluster():
    bindir = pg_bin()
    if bindir is None:
        yield None
        return
    try:
        cluster = Cluster(bindir)
        cluster.start()
    except Exception as exc:  # pragma: no cover - environment specific (no postgres user, port race, ...)
        with contextlib.suppress(Exception):
            cluster.stop()
        pytest.skip(f"could not start PostgreSQL from {bindir}: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """A fresh database per test: a SQLite file, or a new database in the throwaway PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'redwood.db'}"
    cluster = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) not found: install the postgresql package")
    return cluster.new_database()


@pytest.fixture
def app_factory(policy_dir):
    """Build apps (sharing one secret, so keys survive 'restarts') on a given database."""
    from api.service import Settings, create_app

    def factory(url: str, **kw):
        return create_app(Settings(db_url=url, policy_dir=policy_dir, secret="s3cret", bootstrap_key=ADMIN, **kw))

    return factory
