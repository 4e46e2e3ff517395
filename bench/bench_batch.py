"""Batch decisions against single calls: 1,000 states in one ``decide_batch`` call vs 1,000 ``decide`` calls,
same policy, same states, same run (issue 17's target: at least 5x for the planners and the greedy selector).

    python bench/bench_batch.py [--states 1000] [--n-arms 20] [--budget 5]

Planners on budget and capacity structures decide a batch vectorised (engine/planners/batch.py); scheduling
planners and the DQN's greedy selector still loop, so their ratio is about 1.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from engine import DQNConfig, Engine
from scenarios import make


def _states(env, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    counts, H = env.instance.arms.state_counts, env.instance.horizon
    return np.stack([np.concatenate([rng.integers(0, counts), [rng.integers(1, H + 1)]]) for _ in range(n)])


def _measure(policy, states: np.ndarray, selector: str) -> tuple[float, float, float]:
    policy.decide(states[0], selector=selector)
    policy.decide_batch(states[:2], selector=selector)  # compile / fit outside the timing
    start = time.perf_counter()
    singles = [policy.decide(s, selector=selector) for s in states]
    single = time.perf_counter() - start
    start = time.perf_counter()
    batch = policy.decide_batch(states, selector=selector)
    batched = time.perf_counter() - start
    diff = max(abs(a.value - b.value) for a, b in zip(singles, batch, strict=True))
    return single, batched, diff


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--states", type=int, default=1000)
    p.add_argument("--n-arms", type=int, default=20)
    p.add_argument("--budget", type=int, default=5)
    args = p.parse_args()
    print(f"| policy | scenario | J | {args.states} single calls (s) | one batch call (s) | ratio | max value diff |")
    print("|---|---|---:|---:|---:|---:|---:|")
    cases = [(s, pl) for s in ("budgeted", "capacity", "scheduling") for pl in ("whittle", "lagrangian")]
    for scenario, planner in cases:
        env = make(scenario, n_arms=args.n_arms, budget=args.budget, seed=0)
        states = _states(env, args.states)
        single, batched, diff = _measure(Engine.plan(env, planner), states, "mip")
        print(
            f"| {planner} | {scenario} | {args.n_arms} | {single:.3f} | {batched:.3f} | {single / batched:.1f}x"
            f" | {diff:.1e} |",
            flush=True,
        )
    env = make("capacity", n_arms=args.n_arms, budget=args.budget, seed=0)
    config = DQNConfig(episodes=2, warm_start_samples=256, warm_start_epochs=5, snapshots=0)
    engine = Engine.train(env, config, seed=0, progress=False)
    states = _states(env, args.states)
    single, batched, diff = _measure(engine, states, "greedy")
    print(
        f"| DQN greedy | capacity | {args.n_arms} | {single:.3f} | {batched:.3f} | {single / batched:.1f}x"
        f" | {diff:.1e} |"
    )


if __name__ == "__main__":
    main()
