"""Planner decision latency at scale: set-up (fit + first decision) and per-decision time, status and gap.

    python bench/bench_planners.py [--states 30] [--time-limit 5] [--sizes 20:5,100:20,1000:20]
                                   [--scenarios capacity,scheduling] [--planners whittle,lagrangian]
                                   [--modes default] [--pull-limits N] [--json out.json]

``--modes`` picks how the MILP is solved: ``default`` (whatever ``PlannerPolicy`` does by default),
``full`` (``reduce=False``: the MILP over every arm), ``reduced`` (``reduce=True``: the dominance
reduction of :mod:`engine.planners.reduction` over the instance's class-count rows), ``template`` (the reduction
over the domain's own rows for the kept arms) and ``bounds`` (the full MILP with the dominated arms fixed to 0
by column bounds). Times are wall clock per decision (``Decision.seconds``) plus the process CPU time, which
is the better measure on a loaded machine. ``full,reduced`` measures both on the same fitted planner
and the same states, so the ratio is from one run. ``lp_update`` is timed only up to ``--lp-update-max-arms``
(100: an LP per decision; its set-up includes the warm start's reference LPs, one per time to go). The states
are random arm states with a random time to go (seeded). ``--pull-limits N`` gives every
arm a cap of N pulls per episode (:func:`scenarios.pull_limits.with_pull_limits`: the counter joins the arm
state and a capped arm cannot be pulled), so the decisions run on restricted arms.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from engine.planners import make_planner
from engine.planners.policy import PlannerPolicy
from scenarios import make
from scenarios.cormab.instance import N_STATES

MODES = {
    "default": {},
    "full": {"reduce": False},
    "reduced": {"reduce": True},
    "template": {"reduce": "template"},
    "bounds": {"reduce": "bounds"},
}


def random_states(J: int, horizon: int, n: int, seed: int = 0, counts: np.ndarray | None = None) -> list[np.ndarray]:
    """``n`` random observations: arm states below ``counts`` (default 4 each), then a time to go."""
    rng = np.random.default_rng(seed)
    high = np.full(J, N_STATES) if counts is None else np.asarray(counts)
    return [np.concatenate([rng.integers(0, high), [rng.integers(1, horizon + 1)]]) for _ in range(n)]


def limited_env(scenario: str, J: int, B: int, max_pulls: int):
    """The scenario's seed-0 instance with every arm capped at ``max_pulls`` pulls per episode."""
    from scenarios.pull_limits import with_pull_limits

    instance = make(scenario, n_arms=J, budget=B, seed=0).instance
    data = json.loads(instance.model_dump_json())
    data["arms"] = json.loads(with_pull_limits(instance.arms, max_pulls).model_dump_json())
    return make(scenario, instance=data)  # validated there: a refused instance names its field


def bench_one(
    scenario: str,
    J: int,
    B: int,
    planner_name: str,
    modes: list[str],
    n_states: int,
    time_limit: float,
    pull_limits: int | None = None,
) -> list[dict]:
    plain = pull_limits is None
    env = make(scenario, n_arms=J, budget=B, seed=0) if plain else limited_env(scenario, J, B, pull_limits)
    t0 = time.perf_counter()
    try:
        planner = make_planner(planner_name, env.instance)
    except Exception as err:  # reported in the table, the run goes on
        print(
            f"{scenario} J={J} B={B} {planner_name}: fit failed after {time.perf_counter() - t0:.1f} s: {err}",
            flush=True,
        )
        return [
            {
                "scenario": scenario,
                "J": J,
                "B": B,
                "planner": planner_name,
                "mode": "-",
                "failed": str(err),
                "fit_s": time.perf_counter() - t0,
            }
        ]
    fit_s = time.perf_counter() - t0
    states = random_states(J, env.instance.horizon, n_states, counts=env.instance.arms.state_counts)
    rows = []
    for mode in modes:
        t1 = time.perf_counter()
        policy = PlannerPolicy(scenario, env.instance, planner, time_limit=time_limit, **MODES[mode])
        first = policy.decide(states[0])
        setup_s = fit_s + time.perf_counter() - t1
        secs, gaps, values, status = [first.seconds], [first.gap], [first.value], {first.status: 1}
        statuses = [first.status]
        cpu = []
        for s in states[1:]:
            c0 = time.process_time()
            d = policy.decide(s)
            cpu.append(time.process_time() - c0)
            secs.append(d.seconds)
            gaps.append(d.gap)
            values.append(d.value)
            statuses.append(d.status)
            status[d.status] = status.get(d.status, 0) + 1
        later = secs[1:] or secs
        finite = [g for g in gaps if np.isfinite(g)]
        rows.append(
            {
                "scenario": scenario,
                "J": J,
                "B": B,
                "planner": planner_name,
                "mode": mode,
                "fit_s": fit_s,
                "setup_s": setup_s,
                "first_s": first.seconds,
                "median_s": float(np.median(later)),
                "p95_s": float(np.percentile(later, 95)),
                "max_s": float(np.max(later)),
                "status": status,
                "median_cpu_s": float(np.median(cpu or [0.0])),
                "median_gap": float(np.median(finite)) if finite else None,
                "max_gap": float(np.max(finite)) if finite else None,
                "values": values,
                "statuses": statuses,
            }
        )
        r = rows[-1]
        print(
            f"{scenario} J={J} B={B} {planner_name} [{mode}]: set-up {r['setup_s']:.2f} s "
            f"(fit {fit_s:.2f} s), median {1000 * r['median_s']:.1f} ms, p95 {1000 * r['p95_s']:.1f} ms, "
            f"{status}, max gap {_pct(r['max_gap'])}",
            flush=True,
        )
    return rows


def _pct(g: float | None) -> str:
    return "-" if g is None else f"{100 * g:.3g}%"


def table(rows: list[dict]) -> str:
    out = [
        "| scenario | J | B | planner | mode | set-up s | median ms | p95 ms | median CPU ms | statuses "
        "| median gap | max gap |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        if "failed" in r:
            out.append(
                f"| {r['scenario']} | {r['J']} | {r['B']} | {r['planner']} | - | fit failed after "
                f"{r['fit_s']:.0f} s: {r['failed']} | | | | | | |"
            )
            continue
        st = ", ".join(f"{k} {v}" for k, v in sorted(r["status"].items()))
        out.append(
            f"| {r['scenario']} | {r['J']} | {r['B']} | {r['planner']} | {r['mode']} | {r['setup_s']:.2f} | "
            f"{1000 * r['median_s']:.1f} | {1000 * r['p95_s']:.1f} | {1000 * r['median_cpu_s']:.1f} | {st} | "
            f"{_pct(r['median_gap'])} | "
            f"{_pct(r['max_gap'])} |"
        )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--states", type=int, default=30)
    p.add_argument("--time-limit", type=float, default=5.0)
    p.add_argument("--sizes", default="20:5,100:20,1000:20", help="J:B pairs")
    p.add_argument("--scenarios", default="capacity,scheduling")
    p.add_argument("--planners", default="whittle,lagrangian,lp_update")
    p.add_argument("--modes", default="default", help=f"comma list of {', '.join(MODES)}")
    p.add_argument("--pull-limits", type=int, default=None, help="cap every arm at this many pulls per episode")
    p.add_argument("--lp-update-max-arms", type=int, default=100, help="skip lp_update above this many arms")
    p.add_argument("--json", default=None, help="write the rows (with every decision's value) here")
    args = p.parse_args()
    modes = args.modes.split(",")
    rows: list[dict] = []
    for scenario in args.scenarios.split(","):
        for size in args.sizes.split(","):
            J, B = (int(v) for v in size.split(":"))
            for planner in args.planners.split(","):
                if planner == "lp_update" and args.lp_update_max_arms < J:
                    continue
                rows += bench_one(scenario, J, B, planner, modes, args.states, args.time_limit, args.pull_limits)
    print()
    print(table(rows))
    same = {}
    for r in rows:
        if "failed" in r:
            continue
        same.setdefault((r["scenario"], r["J"], r["planner"]), {})[r["mode"]] = r
    ratios = [(k, m["full"], m["reduced"]) for k, m in same.items() if "full" in m and "reduced" in m]
    if ratios:
        print(
            "\n| scenario | J | planner | median full / reduced | p95 full / reduced | same value where full is "
            "optimal | reduced better (full not optimal) | reduced worse |"
        )
        print("|---|---:|---|---:|---:|---|---:|---:|")
        for (scen, J, planner), f, r in ratios:
            same = better = worse = n_opt = 0
            for a, b, st in zip(f["values"], r["values"], f["statuses"], strict=True):
                tol = 1e-6 * max(1.0, abs(a))
                n_opt += st == "optimal"
                same += st == "optimal" and abs(a - b) <= tol
                better += b > a + tol
                worse += b < a - tol
            print(
                f"| {scen} | {J} | {planner} | {f['median_s'] / r['median_s']:.1f}x | {f['p95_s'] / r['p95_s']:.1f}x "
                f"| {same} / {n_opt} | {better} | {worse} |"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
