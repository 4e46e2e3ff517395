"""Decision latency per selector at J = 20, 40, 100 (capacity domain) and training wall time at J = 20.

    python bench/bench_decisions.py [--states 30] [--time-limit 2.0] [--episodes 100]

The J = 20 policy is trained with the default configuration (its wall time is reported); the J = 40 and
J = 100 networks get a short training run (they exist to time decisions, not to be good policies).
Ratios are against the greedy selector measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from engine import DQNConfig, Engine
from scenarios import make
from scenarios.cormab.instance import N_STATES


def time_selectors(engine: Engine, n_states: int, time_limit: float, seed: int = 0) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    J, H = engine.instance.n_arms, engine.instance.horizon
    states = [np.concatenate([rng.integers(0, N_STATES, J), [rng.integers(1, H + 1)]]) for _ in range(n_states)]
    selectors = ["mip", "greedy"]
    n_feasible = None
    if J <= 20:  # beyond that the feasible set is too large to list
        n_feasible = len(engine.model.enumerate(200_000))
        selectors.insert(1, "enumerate")
    out = {}
    for name in selectors:
        engine.decide(states[0], selector=name, time_limit=time_limit)  # build models, caches
        secs, gaps, status = [], [], {}
        for s in states:
            t0 = time.perf_counter()
            d = engine.decide(s, selector=name, time_limit=time_limit)
            secs.append(time.perf_counter() - t0)
            gaps.append(d.gap)
            status[d.status] = status.get(d.status, 0) + 1
        finite = [g for g in gaps if np.isfinite(g)]
        out[name] = {
            "median": float(np.median(secs)),
            "p95": float(np.percentile(secs, 95)),
            "max": float(np.max(secs)),
            "status": status,
            "median_gap": float(np.median(finite)) if finite else None,
            "n_feasible": n_feasible,
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--states", type=int, default=30)
    p.add_argument("--time-limit", type=float, default=2.0)
    p.add_argument("--episodes", type=int, default=100)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = []
    for J, B in ((20, 5), (40, 10), (100, 20)):
        env = make("capacity", n_arms=J, budget=B, seed=0)
        config = DQNConfig() if J == 20 else DQNConfig(episodes=10, act_selector="greedy")
        config.episodes = args.episodes if J == 20 else config.episodes
        t0 = time.perf_counter()
        engine = Engine.train(env, config, seed=0, progress=False)
        train_s = time.perf_counter() - t0
        print(f"J={J}: trained {config.episodes} episodes in {train_s:.1f} s", flush=True)
        for name, r in time_selectors(engine, args.states, args.time_limit).items():
            rows.append((J, name, r, train_s))
            print(
                f"  {name}: median {1000 * r['median']:.1f} ms, p95 {1000 * r['p95']:.1f} ms, "
                f"max {1000 * r['max']:.1f} ms, {r['status']}",
                flush=True,
            )
    print()
    print("| J | selector | median ms | p95 ms | max ms | x greedy (median) | statuses | median gap |")
    print("|---|---|---:|---:|---:|---:|---|---:|")
    greedy = {J: r["median"] for J, name, r, _ in rows if name == "greedy"}
    for J, name, r, _ in rows:
        gap = "-" if r["median_gap"] is None else f"{100 * r['median_gap']:.2f}%"
        print(
            f"| {J} | {name} | {1000 * r['median']:.1f} | {1000 * r['p95']:.1f} | {1000 * r['max']:.1f} | "
            f"{r['median'] / greedy[J]:.1f} | {r['status']} | {gap} |"
        )
    print(f"\ntraining wall time, J=20 ({args.episodes} episodes): {rows[0][3]:.1f} s")


if __name__ == "__main__":
    main()
