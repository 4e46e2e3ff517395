"""The lookahead policy (planner + one step of lookahead on a learned value) against the planners, the DP optimum
(tiny instances) and the certified bound (J = 20): issue 16, item 3's hard families.

Tiny (``--n-arms 6``, the default): every number is exact. The DP optimum (engine.analysis.exact_dp), each
applicable planner's exact value and the lookahead policy's exact value (its decisions are a deterministic
function of the state: DP policy evaluation over every joint state), as % of the optimum.

Larger (``--n-arms 20``): the planners and the lookahead on ``--episodes`` evaluation episodes (common random
numbers, disjoint from training and validation), the lookahead's paired difference against the best planner
with a 95% interval, and every method's % of the certified bound (the occupancy LP with the joint action law
when the feasible set lists within 20,000 actions, else the occupancy LP).

    python bench/bench_lookahead.py --families overlapping_reach coverage --seeds 0 1 2 3 4
    python bench/bench_lookahead.py --families overlapping_reach --n-arms 20 --seeds 0 1 2 --episodes 50

Torch and HiGHS run on one thread; rows print as they finish, then a markdown table and a plot.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_hard_families import BUDGET  # each family's issue setting (bench/ is the script's directory)

PLANNERS = ("whittle", "lagrangian", "action_law")


def _planners(family: str, instance) -> dict:
    from engine.planners.policy import PlannerPolicy
    from scenarios.errors import InvalidInputError

    out = {}
    for name in PLANNERS:
        try:
            out[name] = PlannerPolicy(family, instance, name)
        except InvalidInputError:  # Whittle needs one pull per arm
            continue
    return out


def run_one(family: str, seed: int, args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    from engine.analysis.action_law_bound import tightest_upper_bound
    from engine.analysis.evaluation import evaluate
    from engine.analysis.occupancy_bound import occupancy_upper_bound
    from engine.lookahead import LookaheadConfig, train_lookahead
    from scenarios import make

    torch.manual_seed(seed)
    budget = BUDGET[family] if args.budget is None else args.budget
    instance = make(family, n_arms=args.n_arms, budget=budget, seed=seed, horizon=args.horizon).instance
    row: dict = {"family": family, "seed": seed, "n_arms": args.n_arms, "budget": budget}
    config = LookaheadConfig(
        planner=args.planner,
        rollout_episodes=args.rollouts,
        sweeps=args.sweeps,
        iterations=args.iterations,
        samples=args.samples,
        validation_episodes=args.validation,
    )
    if args.option:
        from api.cli_options import key_values

        row["options"] = key_values(args.option, "--option")
        config = LookaheadConfig.from_dict({**config.to_dict(), **row["options"]})
    t0 = time.perf_counter()
    policy = train_lookahead(family, instance, config, seed=seed, progress=False)
    row["train_seconds"] = time.perf_counter() - t0
    summary = policy.training_summary
    row["kept"] = summary.get("kept")
    keys = ("validation_lookahead", "validation_planner", "validation_gain_se", "validation_iterations", "samples",
            "refit_rmse", "kept_iteration", "selection")  # fmt: skip
    for key in keys:
        row[key] = summary.get(key)
    row["base"] = policy.base.name
    planners = _planners(family, instance)
    if args.n_arms <= 6:
        from engine.analysis.exact_dp import exact_optimum, policy_value
        from engine.analysis.exact_policy import improvement_steps, planner_policy_value

        exact = exact_optimum(instance)
        row["optimum"] = exact.value
        for name, planner in planners.items():
            row[f"{name}_pct"] = 100.0 * planner_policy_value(planner.planner, exact) / exact.value
        steps = improvement_steps(policy.base.planner, exact, args.iterations + 2)
        row["exact_improvement_pct"] = [100.0 * v / exact.value for v in steps]
        if summary.get("selection") == "exact DP policy evaluation":  # training computed it: not twice
            values, kept = summary["validation_iterations"], summary.get("kept_iteration")
            raw = values[(kept or len(values)) - 1]
        else:
            raw = policy_value(instance, lambda s, h: policy.actions(s, h)[0], exact.actions)  # before selection
        value = planner_policy_value(policy.base.planner, exact) if policy.use_planner else raw
        row["lookahead_pct"] = 100.0 * value / exact.value
        row["unselected_pct"] = 100.0 * raw / exact.value
        occupancy = occupancy_upper_bound(instance)
        row["bound_pct"] = 100.0 * tightest_upper_bound(instance, occupancy=occupancy).bound / exact.value
        row["occupancy_bound_pct"] = 100.0 * occupancy.bound / exact.value
    else:
        occupancy = occupancy_upper_bound(instance)
        tight = tightest_upper_bound(instance, occupancy=occupancy)
        bound = tight.bound
        row["bound_method"] = tight.method
        row["occupancy_bound"] = occupancy.bound
        seeds = [seed * 1_000_003 + e for e in range(args.episodes)]
        run = evaluate(instance, {**planners, "lookahead": policy}, episode_seeds=seeds, progress=False)
        means = {k: float(np.mean(m.expected)) for k, m in run.methods.items()}
        best = max(planners, key=lambda k: means[k])
        diff = np.asarray(run.methods["lookahead"].expected) - np.asarray(run.methods[best].expected)
        half = 1.96 * float(diff.std(ddof=1)) / np.sqrt(len(diff))
        row |= {f"{k}_mean": v for k, v in means.items()}
        row |= {f"{k}_pct": 100.0 * v / bound for k, v in means.items()}
        row |= {"bound": bound, "best_planner": best, "gain": float(diff.mean()), "gain_half": half}
        row["gain_pct"] = 100.0 * float(diff.mean()) / means[best]
        row["decision_ms"] = 1e3 * float(np.median(run.methods["lookahead"].decision_seconds))
    return row


def _fmt(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _kept(row: dict) -> str:
    """``kept``, with the iteration when there were several."""
    it, several = row.get("kept_iteration"), len(row.get("validation_iterations") or []) > 1
    return f"{row['kept']} (iteration {it})" if it is not None and several else str(row["kept"])


def table(rows: list[dict]) -> str:
    if rows and "optimum" in rows[0]:
        lines = [
            "| family | seed | optimum | whittle % | lagrangian % | action-law % | lookahead % | kept "
            "| lookahead unselected % | bound % | train s |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['family']} | {r['seed']} | {r['optimum']:.2f} | {_fmt(r.get('whittle_pct'))} | "
                f"{_fmt(r.get('lagrangian_pct'))} | {_fmt(r.get('action_law_pct'))} | {_fmt(r['lookahead_pct'])} | "
                f"{_kept(r)} | "
                f"{_fmt(r['unselected_pct'])} | {_fmt(r['bound_pct'])} | {r['train_seconds']:.0f} |"
            )
        return "\n".join(lines)
    lines = [
        "| family | seed | whittle (% bound) | lagrangian (% bound) | action-law (% bound) | lookahead (% bound) "
        "| lookahead - best planner [95%] | gain % | kept | train s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        cells = [
            "n/a" if f"{k}_mean" not in r else f"{r[f'{k}_mean']:.2f} ({r[f'{k}_pct']:.1f})"
            for k in ("whittle", "lagrangian", "action_law", "lookahead")
        ]
        lines.append(
            f"| {r['family']} | {r['seed']} | " + " | ".join(cells) + f" | {r['gain']:+.2f} "
            f"[{r['gain'] - r['gain_half']:+.2f}, {r['gain'] + r['gain_half']:+.2f}] | {r['gain_pct']:+.1f} | "
            f"{_kept(r)} | {r['train_seconds']:.0f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exact = "optimum" in rows[0]
    keys = ("whittle", "lagrangian", "action_law", "lookahead")
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 3.5))
    width = 0.2
    for i, k in enumerate(keys):
        ys = [r.get(f"{k}_pct") or 0.0 for r in rows]
        ax.bar([j + (i - 1.5) * width for j in range(len(rows))], ys, width, label=k)
    ax.axhline(100.0, color="k", lw=0.8)
    ax.set_xticks(range(len(rows)), [f"{r['family'][:8]} {r['seed']}" for r in rows], rotation=30, fontsize=8)
    ax.set_ylabel("% of the DP optimum" if exact else "% of the certified bound")
    ax.set_ylim(min(70.0, min((r.get("lookahead_pct") or 100.0) for r in rows) - 5), 102)
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    p.add_argument("--families", nargs="+", default=["overlapping_reach", "coverage"], choices=sorted(BUDGET))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--n-arms", type=int, default=6)
    p.add_argument("--budget", type=int, default=None)
    p.add_argument("--horizon", type=int, default=20)
    p.add_argument("--planner", default="auto")
    p.add_argument("--rollouts", type=int, default=800)
    p.add_argument("--sweeps", type=int, default=20)
    p.add_argument("--iterations", type=int, default=1)
    p.add_argument("--samples", type=int, default=32, help="next-state samples per candidate (sampled expectation)")
    p.add_argument("--validation", type=int, default=50)
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes (J > 6)")
    p.add_argument(
        "--option", nargs="+", metavar="KEY=VALUE", help="other LookaheadConfig fields, e.g. rounds=4 neighbours=800"
    )
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=Path("runs/bench_lookahead.png"))
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    for family in args.families:
        for seed in args.seeds:
            row = run_one(family, seed, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(table(rows))
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(rows, args.plot)
    print(f"plot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
