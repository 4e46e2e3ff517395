"""Training a lookahead policy: roll the planner out, fit the value, keep the lookahead only if it beats the planner."""

from __future__ import annotations

import time

import numpy as np
import torch

from engine.analysis.evaluation import evaluate
from engine.analysis.lockstep import observation_rows
from engine.lookahead.config import LookaheadConfig
from engine.lookahead.policy import LookaheadPolicy, base_planner
from engine.lookahead.rollouts import BatchActions, base_policy_returns
from engine.lookahead.value_network import ValueNetwork, fit_values, refine_values
from engine.planners.policy import PlannerPolicy
from engine.sequoia.planner_candidates import significant_gain


def train_lookahead(
    scenario: str,
    instance,
    config: LookaheadConfig | None = None,
    seed: int = 0,
    progress: bool = True,
) -> LookaheadPolicy:
    """Fit V to ``config.planner``'s returns-to-go, then select: the lookahead on V when its paired gain over the
    planner on ``validation_episodes`` held-out episodes exceeds ``selection_z`` standard errors, else the planner
    (recorded in ``training_summary``)."""
    config = config or LookaheadConfig()
    start = time.perf_counter()
    base = PlannerPolicy(scenario, instance, base_planner(config.planner, instance))

    def base_actions(states: np.ndarray, time_to_go: int) -> np.ndarray:
        return np.stack([d.action for d in base.decide_batch(observation_rows(states, time_to_go))])

    base_fn: BatchActions = base_actions
    policy: LookaheadPolicy | None = None
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
        base_fn = _lookahead_actions(policy)
    assert policy is not None
    summary: dict = {"samples": samples, "refit_rmse": rmse, "planner": base.name}
    if config.validation_episodes >= 2:
        seeds = np.random.default_rng([seed, 77]).integers(2**31, size=config.validation_episodes).tolist()
        run = evaluate(instance, {"lookahead": policy, "planner": policy.base}, episode_seeds=seeds, progress=progress)
        look = np.asarray(run.methods["lookahead"].expected, dtype=float)
        plan = np.asarray(run.methods["planner"].expected, dtype=float)
        diff = look - plan
        keep = significant_gain(diff, config.selection_z)
        summary |= {
            "validation_lookahead": float(look.mean()),
            "validation_planner": float(plan.mean()),
            "validation_gain_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
            "kept": "lookahead" if keep else "planner",
        }
        policy = LookaheadPolicy(
            scenario, instance, config, policy.value, seed, use_planner=not keep, summary=summary, base=base
        )
    else:
        summary["kept"] = "lookahead (no validation)"
        policy.training_summary = summary
    policy.training_summary["seconds"] = time.perf_counter() - start
    return policy


def _lookahead_actions(policy: LookaheadPolicy) -> BatchActions:
    return lambda states, time_to_go: policy.actions(states, time_to_go)[0]
