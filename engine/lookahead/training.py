"""Training a lookahead policy: roll the planner out, fit the value, keep the lookahead only if it beats the planner."""

from __future__ import annotations

import time

import numpy as np
import torch

from engine.analysis.lockstep import observation_rows
from engine.lookahead.config import LookaheadConfig
from engine.lookahead.policy import LookaheadPolicy, base_planner
from engine.lookahead.rollouts import BatchActions, base_policy_returns
from engine.lookahead.selection import (
    PLANNER,
    exact_selection_applies,
    iterate_name,
    select_exactly,
    select_policy,
)
from engine.lookahead.value_network import ValueNetwork, fit_values, refine_values
from engine.planners.policy import PlannerPolicy


def train_lookahead(
    scenario: str,
    instance,
    config: LookaheadConfig | None = None,
    seed: int = 0,
    progress: bool = True,
) -> LookaheadPolicy:
    """Fit V to ``config.planner``'s returns-to-go (then to each iterate's, ``iterations`` times), then select
    (:mod:`engine.lookahead.selection`) when ``validation_episodes`` >= 2: by exact DP values on small joint state
    spaces (``exact_selection_states``), else the first iterate whose paired gain over the incumbent (the planner
    first) on held-out episodes exceeds ``selection_z`` standard errors, the validation doubled up to
    ``validation_max_episodes`` while the best gain is positive but not significant; else the planner (recorded in
    ``training_summary``)."""
    config = config or LookaheadConfig()
    # the concrete base planner is what the checkpoint stores: "auto" may choose differently in a later version
    config = LookaheadConfig.from_dict({**config.to_dict(), "planner": base_planner(config.planner, instance)})
    start = time.perf_counter()
    base = PlannerPolicy(scenario, instance, config.planner)

    def base_actions(states: np.ndarray, time_to_go: int) -> np.ndarray:
        return np.stack([d.action for d in base.decide_batch(observation_rows(states, time_to_go))])

    base_fn: BatchActions = base_actions
    policy: LookaheadPolicy | None = None
    iterates: list[LookaheadPolicy] = []
    rmse: list[float] = []
    samples = 0
    for iteration in range(config.iterations):
        data = base_policy_returns(
            instance, base_fn, config.rollout_episodes, seed + 7919 * iteration, config.explore, progress
        )
        torch.manual_seed(seed + iteration)
        value = ValueNetwork(instance.arms.state_counts, instance.horizon, config.hidden)
        fit_values(value, data.states, data.time_to_go, data.returns, config.epochs, seed=seed)
        uniforms = np.random.default_rng([seed, iteration, 11]).uniform(size=(config.samples, instance.n_arms))
        rmse.append(
            refine_values(value, instance, data.states, data.time_to_go, data.actions, uniforms, config.sweeps,
                          seed=seed)
            if config.sweeps
            else float("nan")
        )  # fmt: skip
        samples += len(data)
        policy = LookaheadPolicy(scenario, instance, config, value, seed, base=base)
        iterates.append(policy)
        base_fn = _lookahead_actions(policy)
    assert policy is not None
    summary: dict = {"samples": samples, "refit_rmse": rmse, "planner": base.name}
    chosen = None
    if config.validation_episodes >= 2 and exact_selection_applies(instance, iterates, config.exact_selection_states):
        chosen = select_exactly(instance, base, iterates, progress)
    elif config.validation_episodes >= 2:
        chosen = select_policy(
            instance,
            base,
            iterates,
            config.validation_episodes,
            config.validation_max_episodes,
            config.selection_z,
            seed,
            progress,
        )
    if chosen is not None:
        shown = iterate_name(len(iterates) - 1 if chosen.kept is None else chosen.kept)
        summary |= {
            "validation_lookahead": chosen.mean(shown),
            "validation_planner": chosen.mean(PLANNER),
            "validation_gain_se": chosen.gain_se(shown),
            "validation_episodes_used": chosen.episodes,
            "validation_iterations": [chosen.mean(iterate_name(k)) for k in range(len(iterates))],
            "kept": "planner" if chosen.kept is None else "lookahead",
            "kept_iteration": None if chosen.kept is None else chosen.kept + 1,
            "selection": chosen.method,
        }
        value = policy.value if chosen.kept is None else iterates[chosen.kept].value
        policy = LookaheadPolicy(
            scenario, instance, config, value, seed, use_planner=chosen.kept is None, summary=summary, base=base
        )
    else:
        summary["kept"] = "lookahead (no validation)"
        policy.training_summary = summary
    policy.training_summary["seconds"] = time.perf_counter() - start
    return policy


def _lookahead_actions(policy: LookaheadPolicy) -> BatchActions:
    return lambda states, time_to_go: policy.actions(states, time_to_go)[0]
