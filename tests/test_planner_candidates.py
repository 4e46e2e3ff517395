"""Planner candidates: after snapshot selection, another planner that beats the chosen policy on the held-out
episodes decides instead; unknown names fail before training; the choice survives save and load."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from engine import DQNConfig, Engine
from engine.planners.policy import PlannerPolicy
from engine.sequoia.dqn import DQNTrainer
from engine.sequoia.planner_candidates import better_planner
from engine.sequoia.q_network import QNetwork
from engine.sequoia.selectors import SELECTORS
from scenarios import make
from scenarios.cormab.instance import N_STATES
from scenarios.errors import InvalidInputError


def _env():
    return make("capacity", n_arms=6, budget=2, seed=1, horizon=6)


def test_unknown_candidates_fail_before_training_naming_the_field():
    with pytest.raises(InvalidInputError) as err:
        DQNTrainer(_env().instance, DQNConfig(planner_candidates=("whittle", "oracle")))
    assert err.value.field == "planner_candidates" and "oracle" in err.value.reason


def test_a_candidate_is_kept_only_when_significantly_better():
    env = _env()
    seeds = list(range(8))
    from engine.analysis.evaluation import evaluate

    run = evaluate(env.instance, {"w": PlannerPolicy("", env.instance, "whittle")}, episode_seeds=seeds, progress=False)
    whittle = np.asarray(run.methods["w"].expected)
    name, means = better_planner("", env.instance, ["whittle"], whittle, seeds, 2.0)
    assert name == "" and means == pytest.approx([whittle.mean()])  # equal, not better
    name, _ = better_planner("", env.instance, ["whittle"], whittle - 5.0 - np.arange(8) * 0.1, seeds, 2.0)
    assert name == "whittle"
    name, _ = better_planner("", env.instance, ["whittle"], whittle + 1.0, seeds, 2.0)
    assert name == ""


def test_a_planner_that_beats_the_trained_network_decides_and_is_saved(tmp_path):
    env = _env()
    config = DQNConfig(hidden=(8, 8), validation_episodes=6, planner_candidates=("lagrangian",))
    trainer = DQNTrainer(env.instance, config, seed=0)
    noisy = QNetwork(trainer.net.n_actions, trainer.net.state_dim, (8, 8), trainer.net.context_dim)
    with torch.no_grad():  # a network that drowns the prior: far worse than any planner
        noisy.out.weight.normal_(0.0, 50.0)
    trainer._select_snapshot([(5, noisy)], SELECTORS["enumerate"]())  # no planner snapshot to fall back on
    summary = trainer.summary
    assert summary.kept_planner_name == "lagrangian" and len(summary.candidate_returns) == 1
    engine = Engine(env.scenario, env.instance, trainer.net, trainer.config, summary.to_dict())
    planner = PlannerPolicy(env.scenario, env.instance, "lagrangian")
    states = np.random.default_rng(3).integers(0, N_STATES, (5, 6))
    for s in states:
        assert np.array_equal(engine.decide([*s, 4]).action, planner.decide([*s, 4]).action)
    loaded = Engine.load(engine.save(tmp_path / "e"))
    assert isinstance(loaded, Engine) and loaded.config.planner_candidates == ("lagrangian",)
    for s in states:
        assert np.array_equal(loaded.decide([*s, 4]).action, planner.decide([*s, 4]).action)


def test_the_prior_planner_stays_when_no_candidate_beats_it():
    env = _env()
    trainer = DQNTrainer(env.instance, DQNConfig(hidden=(8, 8), validation_episodes=6, planner_candidates=("whittle",)))
    trainer._select_snapshot([(0, copy.deepcopy(trainer.net))], SELECTORS["enumerate"]())
    assert trainer.summary.kept_planner_name == ""  # the prior is Whittle: the same returns, no gain
