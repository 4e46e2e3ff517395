"""Learned policies at programme scale: the arm-wise Q-network trained on the Whittle prior at J = 1,000.

    python bench/bench_armwise_scale.py                                  # capacity and scheduling, J = 1,000, seeds 0-2
    python bench/bench_armwise_scale.py --scenarios capacity --n-arms 200 --seeds 0 --episodes 20 --eval-episodes 10

Per (scenario, seed): the instance (capacity and scheduling with W = clip(J / 10, 5, 100) workers, as in
``bench/bench_scale.py``), DQN training of the arm-wise network (:mod:`engine.sequoia.armwise_network`;
acting and every argmax through the corrected Whittle planner, :mod:`engine.planners.corrected`) with its
wall time, then the trained policy and the planners (``--planners``, default Whittle) on the same evaluation
episodes (common random numbers, seeds disjoint from training's): mean expected return, the paired difference
trained - best planner with its 95% bootstrap interval, and which snapshot training kept (0 = the planner
itself). The occupancy LP bound is not solved here (over 5 minutes at J = 1,000 for the worker domains; see
``bench/bench_scale.py --bound-max``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _EnginePolicy:
    """An engine as an evaluation policy (``act``), deciding with its exact argmax."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator):
        return self.engine.decide(np.concatenate([states, [time_to_go]]))


def run_case(args: argparse.Namespace, scenario: str, seed: int) -> dict:
    from engine import DQNConfig, Engine
    from engine.analysis.evaluation import evaluate
    from engine.planners.policy import PlannerPolicy
    from scenarios import make

    workers = int(np.clip(args.n_arms // 10, 5, 100))
    env = make(scenario, n_arms=args.n_arms, budget=workers, seed=seed)
    config = DQNConfig(
        network="armwise",
        prior="whittle",
        episodes=args.episodes,
        warm_start_samples=args.warm_start_samples,
        warm_start_epochs=args.warm_start_epochs,
        snapshots=args.snapshots,
        validation_episodes=args.validation_episodes,
        random_candidates=args.candidates,
        elite_candidates=args.candidates,
        planner_candidates=tuple(name for name in args.planner_candidates.split(",") if name),
        confirmation_episodes=args.confirmation_episodes,
        confirmation_max_episodes=args.confirmation_max_episodes,
    )
    start = time.perf_counter()
    engine = Engine.train(env, config, seed=seed, progress=not args.quiet)
    train_seconds = time.perf_counter() - start
    planners = {name: PlannerPolicy(scenario, env.instance, name) for name in args.planners.split(",")}
    seeds = [10_000_019 * (seed + 1) + e for e in range(args.eval_episodes)]
    start = time.perf_counter()
    policies = {"trained": _EnginePolicy(engine), **planners}
    run = evaluate(env.instance, policies, episode_seeds=seeds, progress=not args.quiet)
    means = {name: float(np.mean(run.methods[name].expected)) for name in policies}
    best = max(planners, key=lambda name: means[name])
    diff = run.paired_difference("trained", best)
    summary = engine.training_summary
    return {
        "scenario": scenario,
        "seed": seed,
        "n_arms": args.n_arms,
        "workers": workers,
        "train_s": train_seconds,
        "train_s_per_episode": train_seconds / max(args.episodes, 1),
        "eval_s": time.perf_counter() - start,
        "returns": means,
        "best_planner": best,
        "diff": diff,
        "selected_snapshot": summary.get("selected_snapshot"),
        "kept_planner_name": summary.get("kept_planner_name", ""),
        "kept_planner": bool(summary.get("kept_planner")),
        "final_returns": summary.get("final_returns"),
        "final_episodes": summary.get("final_episodes"),
        "snapshot_returns": summary.get("snapshot_returns"),
    }


def _kept(row: dict) -> str:
    """The planner training kept instead of the network, or the selected snapshot (0 = the prior's planner)."""
    return row.get("kept_planner_name") or str(row["selected_snapshot"])


def table(rows: list[dict]) -> str:
    out = [
        "| scenario | seed | J | W | train min | s/episode | trained | planners | trained - best planner [95% CI] "
        "| kept snapshot |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        d = r["diff"]
        lo, hi = d.get("ci95", (float("nan"), float("nan")))
        out.append(
            f"| {r['scenario']} | {r['seed']} | {r['n_arms']:,} | {r['workers']} | {r['train_s'] / 60:.1f} | "
            f"{r['train_s_per_episode']:.1f} | {r['returns']['trained']:.2f} | "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["returns"].items() if k != "trained")
            + " | "
            + f"{d['mean']:+.2f} [{lo:+.2f}, {hi:+.2f}] ({r['best_planner']}) | {_kept(r)} |"
        )
    return "\n".join(out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    p.add_argument("--scenarios", default="capacity,scheduling")
    p.add_argument("--n-arms", type=int, default=1000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--episodes", type=int, default=60, help="training episodes")
    p.add_argument("--warm-start-samples", type=int, default=512)
    p.add_argument("--warm-start-epochs", type=int, default=30)
    p.add_argument("--snapshots", type=int, default=4)
    p.add_argument("--validation-episodes", type=int, default=10)
    p.add_argument("--candidates", type=int, default=32, help="random and elite TD-target candidates each")
    p.add_argument("--eval-episodes", type=int, default=20)
    p.add_argument("--planners", default="whittle", help="comma-separated planners evaluated beside the trained policy")
    p.add_argument(
        "--planner-candidates",
        default="auto",
        help="comma-separated planners of training's final choice (engine/sequoia/planner_candidates.py; auto: "
        "every planner that fits, Lagrangian up to 200 arms, LP-update up to 100; '' for none)",
    )
    p.add_argument("--confirmation-episodes", type=int, default=20, help="fresh episodes of the final choice")
    p.add_argument(
        "--confirmation-max-episodes", type=int, default=80, help="extended up to this many while the choice is close"
    )
    p.add_argument("--json", type=Path, default=None, help="append one JSON line per case")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    rows = []
    for scenario in args.scenarios.split(","):
        for seed in args.seeds:
            row = run_case(args, scenario, seed)
            rows.append(row)
            print(table([row]).splitlines()[-1], flush=True)
            if args.json is not None:
                with args.json.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
