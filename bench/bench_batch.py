"""Batch decisions against single calls: 1,000 states in one ``decide_batch`` call vs 1,000 ``decide`` calls,
same policy, same states, same run (issue 17's target: at least 5x for the planners and the greedy selector).

    python bench/bench_batch.py [--states 1000] [--n-arms 20] [--budget 5]

Planners on budget, capacity and scheduling structures decide a batch vectorised (engine/planners/batch.py); the
DQN's greedy selector ascends every state in lock step, one network forward per round
(engine/sequoia/selectors/greedy.py). "same actions" counts the states whose batch action equals the single call's;
"left to single" the states a batch decided by the single call (near ties).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from engine import DQNConfig, Engine
from engine.planners.batch import parse_rows
from engine.sequoia.selectors.greedy import greedy_ascent_batch
from engine.sequoia.state_q_batch import StateQBatch
from scenarios import make


def _states(env, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts, H = env.instance.arms.state_counts, env.instance.horizon
    return np.stack([np.concatenate([rng.integers(0, counts), [rng.integers(1, H + 1)]]) for _ in range(n)])


def _measure(policy, states: np.ndarray, selector: str, label: str, scenario: str) -> None:
    """Time 1,000 single calls and one batch call of the same states; print one table row."""
    policy.decide(states[0], selector=selector)
    policy.decide_batch(states[:2], selector=selector)  # compile / fit outside the timing
    start = time.perf_counter()
    singles = [policy.decide(s, selector=selector) for s in states]
    single = time.perf_counter() - start
    start = time.perf_counter()
    batch = policy.decide_batch(states, selector=selector)
    batched = time.perf_counter() - start
    diff = max(abs(a.value - b.value) for a, b in zip(singles, batch, strict=True))
    same = sum(np.array_equal(a.action, b.action) for a, b in zip(singles, batch, strict=True))
    left = _left_to_single(policy, states, batch)
    print(
        f"| {label} | {scenario} | {states.shape[1] - 1} | {single:.3f} | {batched:.3f} | {single / batched:.1f}x"
        f" | {diff:.1e} | {same}/{len(states)} | {left} |",
        flush=True,
    )


def _left_to_single(policy, states: np.ndarray, batch: list) -> int:
    """How many states the batch call decided by the single call (untimed recount for the greedy selector)."""
    if isinstance(policy, Engine):
        arm_states, ttg = parse_rows(policy.instance, policy.instance.make_env(), list(states))
        q = StateQBatch.of(policy.model, policy.network, policy.encoder, policy.prior, arm_states, ttg)
        return int((~greedy_ascent_batch(q)[2]).sum())
    return sum("vectorised" not in (d.reason or "") for d in batch)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--states", type=int, default=1000)
    p.add_argument("--n-arms", type=int, default=20)
    p.add_argument("--budget", type=int, default=5)
    args = p.parse_args()
    print(
        f"| policy | scenario | J | {args.states} single calls (s) | one batch call (s) | ratio | max value diff"
        " | same actions | left to single |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    scenarios = ("budgeted", "capacity", "scheduling")
    for scenario in scenarios:
        for planner in ("whittle", "lagrangian"):
            env = make(scenario, n_arms=args.n_arms, budget=args.budget, seed=0)
            _measure(Engine.plan(env, planner), _states(env, args.states), "mip", planner, scenario)
    for scenario in scenarios:
        env = make(scenario, n_arms=args.n_arms, budget=args.budget, seed=0)
        # 10 episodes: the residual network's output layer (zero at the start) has moved, so Q is not the prior alone
        config = DQNConfig(episodes=10, warm_start_samples=256, warm_start_epochs=5, snapshots=0)
        engine = Engine.train(env, config, seed=0, progress=False)
        _measure(engine, _states(env, args.states), "greedy", "DQN greedy", scenario)


if __name__ == "__main__":
    main()
