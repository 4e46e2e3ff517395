"""Planners vs the exact DP optimum vs a trained policy on the hard families (issue 16, item 3).

For each family (``overlapping_reach``, ``coverage``, ``switching``) and seed, on a tiny instance (J = 6 by default):
the exact DP optimum (engine.analysis.exact_dp), each applicable planner's exact value as % of it
(engine.analysis.exact_policy.planner_policy_value: Whittle on arm-pull families only, Lagrangian everywhere), the
trained DQN's greedy policy evaluated exactly (Engine.train + greedy_policy_value) and the certified
occupancy-LP bound. Prints one row per (family, seed) as it finishes, then a table with the means.

    python bench/bench_hard_families.py                        # J = 6, seeds 0-4, horizon 20, 100 episodes
    python bench/bench_hard_families.py --families coverage --seeds 0 1 --episodes 20 --json out.json

Budgets default to each family's issue setting (overlapping_reach: B = 4 of N = 8 interventions;
coverage and switching: B = 2 arms). Torch runs on one thread (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FAMILIES = ("overlapping_reach", "coverage", "switching")
BUDGET = {"overlapping_reach": 4, "coverage": 2, "switching": 2}
PLANNERS = ("whittle", "lagrangian")


def run_one(family: str, seed: int, n_arms: int, horizon: int, episodes: int, budget: int | None) -> dict:
    import torch

    from engine import DQNConfig, Engine
    from engine.analysis.exact_dp import exact_optimum
    from engine.analysis.exact_policy import greedy_policy_value, planner_policy_value
    from engine.analysis.occupancy_bound import occupancy_upper_bound
    from engine.planners import make_planner
    from scenarios import make
    from scenarios.errors import InvalidInputError

    start = time.perf_counter()
    b = BUDGET[family] if budget is None else budget
    env = make(family, n_arms=n_arms, budget=b, seed=seed, horizon=horizon)
    instance = env.instance
    exact = exact_optimum(instance)
    row: dict = {
        "family": family,
        "seed": seed,
        "n_arms": n_arms,
        "n_actions": int(instance.n_actions),
        "budget": b,
        "horizon": horizon,
        "optimum": exact.value,
    }
    for name in PLANNERS:
        try:
            planner = make_planner(name, instance)
        except InvalidInputError:  # Whittle needs one pull per arm
            row[f"{name}_pct"] = None
            continue
        row[f"{name}_pct"] = 100.0 * planner_policy_value(planner, exact) / exact.value
    row["bound"] = occupancy_upper_bound(instance).bound
    row["bound_pct"] = 100.0 * row["bound"] / exact.value
    if episodes > 0:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        engine = Engine.train(env, DQNConfig(episodes=episodes), seed=seed, progress=False)
        row["train_seconds"] = time.perf_counter() - t0
        row["trained_pct"] = 100.0 * greedy_policy_value(engine, exact) / exact.value
        summary = getattr(engine, "training_summary", {})
        row["kept_planner"] = bool(summary.get("kept_planner"))  # the planner decides instead of the network
        row["selected_snapshot"] = summary.get("selected_snapshot")  # 0: the untrained network, i.e. the prior
    else:
        row["trained_pct"] = None
    row["seconds"] = time.perf_counter() - start
    return row


def _fmt(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def table(rows: list[dict]) -> str:
    """Markdown table: one row per (family, seed), then the mean (and minimum) per family."""
    lines = [
        "| family | seed | optimum | whittle % | lagrangian % | trained % | LP bound % |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['seed']} | {r['optimum']:.2f} | {_fmt(r['whittle_pct'])} | "
            f"{_fmt(r['lagrangian_pct'])} | {_fmt(r['trained_pct'])} | {_fmt(r['bound_pct'])} |"
        )
    for family in dict.fromkeys(r["family"] for r in rows):
        fam = [r for r in rows if r["family"] == family]
        for label, agg in (("mean", lambda xs: sum(xs) / len(xs)), ("min", min)):
            cells = []
            for key in ("whittle_pct", "lagrangian_pct", "trained_pct", "bound_pct"):
                xs = [r[key] for r in fam if r[key] is not None]
                cells.append(_fmt(agg(xs)) if xs else "n/a")
            opt = agg([r["optimum"] for r in fam])
            lines.append(f"| {family} | **{label}** | {opt:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--n-arms", type=int, default=6)
    p.add_argument("--budget", type=int, default=None, help="default: the family's issue setting")
    p.add_argument("--horizon", type=int, default=20)
    p.add_argument("--episodes", type=int, default=100, help="DQN training episodes (0: planners only)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for family in args.families:
        for seed in args.seeds:
            row = run_one(family, seed, args.n_arms, args.horizon, args.episodes, args.budget)
            rows.append(row)
            print(
                f"{family} seed {seed}: optimum {row['optimum']:.3f}, whittle {_fmt(row['whittle_pct'])}%, "
                f"lagrangian {_fmt(row['lagrangian_pct'])}%, trained {_fmt(row['trained_pct'])}%, "
                f"bound {_fmt(row['bound_pct'])}% ({row['seconds']:.0f} s)",
                flush=True,
            )
            if args.json:
                args.json.write_text(
                    json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2)
                )
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
