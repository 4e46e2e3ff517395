"""Sequential against lock-step evaluation (engine/analysis/lockstep.py) of the Whittle planner, in one run.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/bench_evaluation.py
    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/bench_evaluation.py --cases capacity:20:50 --planner lagrangian

Per case (scenario, J arms, episodes; W = clip(J / 10, 5, 100) workers as in bench/bench_scale.py, or W
pulls on budgeted): one ``PlannerPolicy``, warmed by two episodes each way (untimed), then ``evaluate`` on the
same episodes episode by episode (``batched=False``) and in lock step (``batched=True``, one batch decision per
step over every episode), alternately, ``--repeats`` times each: the best wall time of each path is reported (a
shared machine's load varies). Prints both wall times, their ratio and whether the per-episode realised and
expected returns and the statuses are identical (the largest gap difference too: a single decision's reduced
MILP reports ~1e-16 where the vectorised oracle reports 0). A policy whose batches are not vectorised
(``acts_in_batches()`` false) runs episode by episode both ways: its column says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CASES = "capacity:20:50,scheduling:20:50,capacity:1000:10,scheduling:1000:10,budgeted:1000:10"


def run_case(scenario: str, J: int, episodes: int, planner: str, repeats: int = 1) -> dict:
    """Both evaluations of one case, timed (the best of ``repeats`` each, alternating), and their comparison."""
    from engine.analysis.evaluation import evaluate
    from engine.planners.policy import PlannerPolicy
    from scenarios import make

    W = int(np.clip(J // 10, 5, 100))
    env = make(scenario, n_arms=J, budget=W, seed=0)
    policy = PlannerPolicy(scenario, env.instance, planner)
    policies = {planner: policy}
    for batched in (False, True):  # warm-up: the planner's fit, the oracle and its batch cache
        evaluate(env.instance, policies, episode_seeds=[10**6, 10**6 + 1], progress=False, batched=batched)
    runs: dict[bool, tuple[float, Any]] = {}
    for _ in range(repeats):
        for batched in (False, True):
            t0 = time.perf_counter()
            run = evaluate(env.instance, policies, episodes=episodes, seed=0, progress=False, batched=batched)
            seconds = time.perf_counter() - t0
            if batched not in runs or seconds < runs[batched][0]:
                runs[batched] = (seconds, run.methods[planner])
    (seq_s, seq), (lock_s, lock) = runs[False], runs[True]
    gap_diff = max(
        (abs(a - b) for a, b in zip(seq.gaps, lock.gaps, strict=True) if np.isfinite(a) or np.isfinite(b)),
        default=0.0,
    )
    return {
        "scenario": scenario,
        "J": J,
        "W": W,
        "episodes": episodes,
        "horizon": env.instance.horizon,
        "lockstep": policy.acts_in_batches(),
        "seq_s": seq_s,
        "lock_s": lock_s,
        "ratio": seq_s / lock_s,
        "returns_equal": seq.realised == lock.realised and seq.expected == lock.expected,
        "statuses_equal": seq.statuses == lock.statuses,
        "statuses": lock.statuses,
        "gap_diff": gap_diff,
        "mean_expected": float(np.mean(lock.expected)),
    }


def table(rows: list[dict], planner: str) -> str:
    out = [
        f"| scenario | J | W | episodes x H | {planner} in lock step | sequential s | lock-step s | speed-up "
        "| returns equal | statuses equal | max gap diff | mean expected return |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['scenario']} | {r['J']:,} | {r['W']} | {r['episodes']} x {r['horizon']} "
            f"| {'yes' if r['lockstep'] else 'no (episode by episode)'} | {r['seq_s']:.2f} | {r['lock_s']:.2f} "
            f"| {r['ratio']:.1f}x | {r['returns_equal']} | {r['statuses_equal']} | {r['gap_diff']:.1e} "
            f"| {r['mean_expected']:.2f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=DEFAULT_CASES, help="scenario:J:episodes, comma separated")
    parser.add_argument("--planner", default="whittle")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per path and case (the best is kept)")
    args = parser.parse_args(argv)
    rows = []
    for case in args.cases.split(","):
        scenario, J, episodes = case.split(":")
        rows.append(run_case(scenario, int(J), int(episodes), args.planner, args.repeats))
        print(f"  {case}: {rows[-1]['seq_s']:.2f} s vs {rows[-1]['lock_s']:.2f} s", file=sys.stderr, flush=True)
    print(table(rows, args.planner))
    bad = [r for r in rows if not (r["returns_equal"] and r["statuses_equal"])]
    if bad:
        print(f"MISMATCH in {[(r['scenario'], r['J']) for r in bad]}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
