"""The final choice after snapshot selection: on fresh episodes the best planner (the prior's or a candidate) decides
unless the network beats it significantly; ``auto`` candidates; unknown names fail before training; the choice
survives save and load."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from engine import DQNConfig, Engine
from engine.planners.policy import PlannerPolicy
from engine.sequoia.dqn import DQNTrainer
from engine.sequoia.planner_candidates import AUTO_MAX_ARMS, AUTO_PLANNERS, final_choice, resolve_candidates
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


def test_final_choice_prefers_the_best_planner_unless_the_network_is_significantly_better():
    seeds = np.arange(8)
    base = np.linspace(10.0, 20.0, 8)

    def measure(name, episode_seeds):
        return base + {"lagrangian": 0.5, "lp_update": 0.2}[name]

    def net(gain):
        return lambda episode_seeds: base + gain + 0.01 * np.sin(episode_seeds)

    prior = lambda episode_seeds: base  # noqa: E731
    choice = final_choice(net(0.6), prior, ["lagrangian", "lp_update"], measure, seeds, 2.0)
    assert choice.winner == "network"  # 0.1 above the best planner, with almost no noise
    assert choice.means["lagrangian"] == pytest.approx(base.mean() + 0.5)
    noisy = lambda episode_seeds: base + 0.6 + np.where(episode_seeds % 2, 3.0, -3.0)  # noqa: E731
    assert final_choice(noisy, prior, ["lagrangian", "lp_update"], measure, seeds, 2.0).winner == "lagrangian"
    assert final_choice(None, prior, ["lp_update"], measure, seeds, 2.0).winner == "lp_update"  # a sure gain
    wobbly = lambda name, episode_seeds: base + 0.2 + np.where(episode_seeds % 2, 2.0, -2.0)  # noqa: E731
    assert final_choice(None, prior, ["lp_update"], wobbly, seeds, 2.0).winner == "prior"  # +0.2, se 0.76
    assert final_choice(None, prior, ["lp_update"], wobbly, seeds, 2.0, planner_switch_z=0.0).winner == "lp_update"
    assert final_choice(None, None, ["lagrangian", "lp_update"], measure, seeds, 2.0).winner == "lagrangian"
    assert final_choice(None, prior, [], measure, seeds, 2.0).winner == "prior"  # nothing to compare
    tie = final_choice(None, prior, ["lagrangian"], lambda n, s: base, seeds, 2.0)
    assert tie.winner == "prior"  # the prior's planner on ties
    assert final_choice(net(-1.0), None, [], measure, seeds, 2.0).winner == "network"  # no planner at all


def test_a_close_contest_between_planners_is_extended_on_fresh_episodes():
    """Two candidates both beat the prior's planner; on the first 8 episodes the one truly behind leads by
    noise. Doubling the episodes (fresh seeds, every contender measured on them) settles it; a clear choice is
    not extended, the extension stops at ``max_episodes``, and two candidates ahead of the prior's planner always
    play all of them."""
    base = np.linspace(10.0, 20.0, 64)
    # lagrangian: +1.0 always; lp_update: +1.2 on average but +0.9 on the first 8 episodes (seeds 0-7)
    effect = {"lagrangian": np.full(64, 1.0), "lp_update": np.where(np.arange(64) < 8, 0.9, 1.24)}
    effect["lp_update"] = effect["lp_update"] + 0.5 * np.sin(np.arange(64))

    def measure(name, episode_seeds):
        return base[episode_seeds] + effect[name][episode_seeds]

    prior = lambda episode_seeds: base[episode_seeds]  # noqa: E731
    counter = iter(range(8, 64))

    def more(n):
        return np.array([next(counter) for _ in range(n)])

    first = final_choice(None, prior, ["lagrangian", "lp_update"], measure, np.arange(8), 2.0)
    assert first.winner == "lagrangian" and first.episodes == 8  # no extension asked for
    extended = final_choice(None, prior, ["lagrangian", "lp_update"], measure, np.arange(8), 2.0, 1.0, more, 64)
    assert extended.winner == "lp_update" and extended.episodes in (16, 32, 64)
    counter = iter(range(8, 64))
    capped = final_choice(None, prior, ["lagrangian", "lp_update"], measure, np.arange(8), 2.0, 1.0, more, 8)
    assert capped.winner == "lagrangian" and capped.episodes == 8
    clear = final_choice(None, prior, ["lagrangian"], measure, np.arange(8), 2.0, 1.0, more, 64)
    assert clear.winner == "lagrangian" and clear.episodes == 8  # one candidate, clearly ahead of the prior
    counter = iter(range(8, 64))
    steady = {"lagrangian": 2.0, "lp_update": 1.0}  # no noise: the lead is "significant" on any sample ...
    both = final_choice(None, prior, ["lagrangian", "lp_update"], lambda n, e: base[e] + steady[n], np.arange(8), 2.0,
                        1.0, more, 64)  # fmt: skip
    assert both.winner == "lagrangian" and both.episodes == 64  # ... but two candidates ahead of the prior play all


def test_auto_candidates_are_the_planners_that_fit_the_instance():
    capacity = _env().instance
    assert resolve_candidates(("auto",), capacity, "whittle") == ["lagrangian", "lp_update"]
    assert resolve_candidates(("lp_update", "auto"), capacity, "whittle") == ["lp_update", "lagrangian"]
    assert resolve_candidates((), capacity, "whittle") == []
    interventions = make("multi_intervention", n_arms=5, budget=2, seed=0, horizon=4).instance
    assert resolve_candidates(("auto",), interventions, "lagrangian") == ["lp_update"]  # no Whittle: not arm pulls
    mid = make("capacity", n_arms=AUTO_PLANNERS["lp_update"] + 1, budget=2, seed=0, horizon=4).instance
    assert resolve_candidates(("auto",), mid, "whittle") == ["lagrangian"]  # LP-update: one LP per decision
    big = make("capacity", n_arms=AUTO_MAX_ARMS + 1, budget=2, seed=0, horizon=4).instance
    assert resolve_candidates(("auto",), big, "whittle") == []


def test_the_final_choice_uses_fresh_episodes_not_the_validation_ones():
    """A snapshot that only looked better on the validation episodes (as the maximum of noisy scores does) is
    confirmed, or not, on episodes it was not chosen on."""
    env = _env()
    config = DQNConfig(hidden=(8, 8), validation_episodes=4, confirmation_episodes=6, planner_candidates=())
    trainer = DQNTrainer(env.instance, config, seed=0)
    seen: list[list[int]] = []
    original = trainer.policy_returns

    def spy(net, seeds, selector, version):
        seen.append(sorted(int(x) for x in seeds))
        return original(net, seeds, selector, version)

    trainer.policy_returns = spy  # type: ignore[method-assign]
    trainer._select_snapshot([(5, copy.deepcopy(trainer.net))], SELECTORS["enumerate"]())
    assert len(seen) == 2 and len(seen[0]) == 4 and len(seen[1]) == 6 and not set(seen[0]) & set(seen[1])
    assert trainer.summary.final_episodes == 6 and set(trainer.summary.final_returns) == {"network", "prior"}


def test_a_planner_that_beats_the_trained_network_decides_and_is_saved(tmp_path):
    env = _env()
    config = DQNConfig(hidden=(8, 8), validation_episodes=6, prior="reward", planner_candidates=("lagrangian",))
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
    assert trainer.summary.kept_planner_name == ""  # the prior is Whittle: the same returns, the prior's on ties
    assert trainer.summary.selected_snapshot == 0 and not trainer.summary.kept_planner


def test_candidates_fitted_while_resolving_are_handed_to_the_contest():
    """``auto`` fits each candidate to see whether it accepts the instance; the contest reuses those fits (LP-update's
    reference LPs take 35 s at J = 100) instead of fitting again."""
    fitted: dict = {}
    names = resolve_candidates(("auto",), _env().instance, "whittle", fitted)
    assert names == ["lagrangian", "lp_update"] and set(fitted) == set(names)
    assert all(fitted[name].name == name and fitted[name]._fitted for name in names)
