"""DQN model selection: the kept network is the best snapshot on held-out episodes."""

from __future__ import annotations

import copy

import numpy as np
import torch

from engine.sequoia.dqn import DQNConfig, DQNTrainer, _snapshot_episodes
from engine.sequoia.selectors import SELECTORS
from scenarios import make


def test_snapshot_schedule():
    assert _snapshot_episodes(100, 5) == {0, 25, 50, 75, 100}
    assert _snapshot_episodes(100, 0) == set() and _snapshot_episodes(100, 1) == set()
    assert _snapshot_episodes(3, 5) == {0, 1, 2, 3}


def test_training_keeps_the_best_validated_snapshot():
    env = make("capacity", n_arms=6, budget=2, seed=1)
    trainer = DQNTrainer(
        env.instance, DQNConfig(episodes=6, warm_start_epochs=10, snapshots=4, validation_episodes=4), seed=0
    )
    net = trainer.train(progress=False)
    s = trainer.summary
    assert s.snapshot_episodes == [0, 2, 4, 6] and len(s.snapshot_returns) == 4
    best = int(np.argmax(s.snapshot_returns))
    assert s.selected_snapshot == s.snapshot_episodes[best]
    # selection itself: scores are the held-out returns, and the kept weights are the best snapshot's
    other = copy.deepcopy(net)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(-1.0)
    selector = SELECTORS["enumerate"]()
    trainer.rng = np.random.default_rng(5)
    trainer._select_snapshot([(0, other), (6, copy.deepcopy(net))], selector)
    seeds = np.random.default_rng(5).integers(2**31, size=4)
    scores = [trainer.policy_return(n, seeds, selector, version=100 + i) for i, n in enumerate((other, net))]
    assert trainer.summary.snapshot_returns == scores
    kept = (other, net)[int(np.argmax(scores))]
    assert all(
        torch.equal(a, b) for a, b in zip(trainer.net.state_dict().values(), kept.state_dict().values(), strict=True)
    )


def test_snapshots_disabled_keeps_the_final_network():
    env = make("capacity", n_arms=6, budget=2, seed=1)
    trainer = DQNTrainer(env.instance, DQNConfig(episodes=3, warm_start_epochs=5, snapshots=0), seed=0)
    trainer.train(progress=False)
    assert trainer.summary.snapshot_episodes == [] and trainer.summary.selected_snapshot == -1


def test_snapshots_are_scored_as_deployed_pruned(monkeypatch):
    """With MILP-friendly pruning on, every candidate is scored after pruning, and the kept network is one of
    the scored candidates (what is deployed is what was scored)."""
    env = make("capacity", n_arms=6, budget=2, seed=1)
    cfg = DQNConfig(episodes=4, warm_start_epochs=5, snapshots=3, validation_episodes=2, prune_threshold=0.05)
    trainer = DQNTrainer(env.instance, cfg, seed=0)
    seen = []
    original = DQNTrainer._select_snapshot

    def capture(self, candidates, selector):
        seen.extend(net for _, net in candidates)
        original(self, candidates, selector)

    monkeypatch.setattr(DQNTrainer, "_select_snapshot", capture)
    net = trainer.train(progress=False)
    assert len(seen) == 3
    for candidate in seen:
        w = torch.cat([layer.weight.flatten() for layer in candidate.layers])
        assert torch.all((w == 0) | (w.abs() >= 0.05))
    kept = [
        c
        for c in seen
        if all(torch.equal(a, b) for a, b in zip(c.state_dict().values(), net.state_dict().values(), strict=True))
    ]
    assert kept, "the kept network is one of the scored (pruned) candidates"
