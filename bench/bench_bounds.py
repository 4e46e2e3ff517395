"""The two certified upper bounds side by side: the occupancy LP and the action-law LP (engine.analysis), with their
solve times, and on tiny instances the exact DP optimum they bound (each bound as % of it).

    python bench/bench_bounds.py --families overlapping_reach --n-arms 6 --seeds 0 1 2 3 4 5 6 7 8 9
    python bench/bench_bounds.py --families overlapping_reach --n-arms 20 --budget 4 --seeds 0 1 2 3 4

Rows print as they finish (JSON), then a markdown table. HiGHS runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_one(family: str, seed: int, args: argparse.Namespace) -> dict:
    from engine.analysis.action_law_bound import action_law_upper_bound
    from engine.analysis.exact_dp import exact_optimum, fits
    from engine.analysis.occupancy_bound import occupancy_upper_bound
    from scenarios import make

    kwargs = {} if args.budget is None else {"budget": args.budget}
    instance = make(family, n_arms=args.n_arms, seed=seed, horizon=args.horizon, **kwargs).instance
    row: dict = {"family": family, "seed": seed, "n_arms": args.n_arms}
    t0 = time.perf_counter()
    row["occupancy"] = occupancy_upper_bound(instance).bound
    row["occupancy_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    law = action_law_upper_bound(instance, max_actions=args.max_actions)
    row |= {"action_law": law.bound, "action_law_s": time.perf_counter() - t0, "rounds": law.rounds}
    row |= {"converged": law.converged, "n_actions": law.n_actions}
    if args.n_arms <= 6 and fits(instance):
        row["optimum"] = exact_optimum(instance).value
        row["occupancy_pct"] = 100.0 * row["occupancy"] / row["optimum"]
        row["action_law_pct"] = 100.0 * law.bound / row["optimum"]
    return row


def table(rows: list[dict]) -> str:
    lines = [
        "| family | seed | actions | optimum | occupancy bound (% of optimum) | action-law bound (%) | occupancy s "
        "| action-law s (rounds) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        opt = r.get("optimum")
        occ = f"{r['occupancy']:.2f}" + (f" ({r['occupancy_pct']:.2f})" if opt else "")
        law = f"{r['action_law']:.2f}" + (f" ({r['action_law_pct']:.2f})" if opt else "")
        flag = "" if r["converged"] else ", not converged"
        lines.append(
            f"| {r['family']} | {r['seed']} | {r['n_actions']} | {'n/a' if opt is None else f'{opt:.2f}'} | {occ} "
            f"| {law} | {r['occupancy_s']:.2f} | {r['action_law_s']:.2f} ({r['rounds']}{flag}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=["overlapping_reach"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--n-arms", type=int, default=6)
    parser.add_argument("--budget", type=int, default=None, help="the family's default when omitted")
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--max-actions", type=int, default=200_000)
    args = parser.parse_args(argv)
    rows = []
    for family in args.families:
        for seed in args.seeds:
            row = run_one(family, seed, args)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
