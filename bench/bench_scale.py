"""Planner decisions at programme scale: set-up, decision latency, peak memory, certificates, LP-bound ratio.

    python bench/bench_scale.py                       # J = 20, 100, 1,000, 10,000: 4.5-9 min on a shared 2-core box
    python bench/bench_scale.py --big                 # also J = 100,000 for the budgeted planner (1-4 min more)
    python bench/bench_scale.py --sizes 20,100 --scenarios budgeted --plot /tmp/scale.png --json out.json

Every (scenario, J) runs in a fresh subprocess (so ``ru_maxrss`` is that case's peak resident memory; the
interpreter with its imports is reported apart as ``base``). Per case: the instance (``make``: capacity and
scheduling with W = clip(J / 10, 5, 100) workers, budgeted with a budget of J / 10 pulls), the planner policy's
set-up (``PlannerPolicy`` construction: action model, Whittle indices, oracle or reduction; plus its first
decision), then ``--states`` random states (random arm states and time to go, seeded) decided end to end
(``decide``: table, exact argmax, feasibility check, assignment): median and p95 wall time, statuses and the
largest certified gap. Where J <= ``--bound-max`` the occupancy LP bound (:mod:`engine.analysis.occupancy_bound`)
is solved and the policy run for ``--episodes`` episodes: the planner's mean expected return as % of that bound
(an upper bound on any policy's value); above, "n/a" (the LP grows with J x horizon: 36 s at J = 1,000 budgeted;
the worker domains add W x J assignments per step and took over 5 minutes at J = 1,000, so their default limit
is J = 100).

The second table decides the same states (J <= ``--exact-max``) three ways on the planner's objective: the
exact combinatorial oracle (:mod:`solvers.oracles`, where the domain's structure admits it), the policy's
default path (oracle, or the class-count MILP of :mod:`engine.planners.reduction`) and the general MILP over the
domain's ActionModel (``--backend``, HiGHS by default; ``--milp-time-limit``), with the largest relative
difference of their values.
(``bench/bench_oracles.py`` compares the MIP selector of a trained Q network, not a planner's objective, so its
functions do not apply here.)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIOS = ("budgeted", "capacity", "scheduling")


def size_budget(scenario: str, J: int) -> int:
    """Workers (capacity, scheduling) or pulls per step (budgeted) at J arms."""
    return max(1, J // 10) if scenario == "budgeted" else int(np.clip(J // 10, 5, 100))


def random_states(instance, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` observations: uniform arm states (each within its own arm's states) and a uniform time to go."""
    rng = np.random.default_rng(seed)
    counts = instance.arms.state_counts
    return [
        np.concatenate(
            [(rng.uniform(size=counts.size) * counts).astype(np.int64), [rng.integers(1, instance.horizon + 1)]]
        )
        for _ in range(n)
    ]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


# ------------------------------------------------------------------------------------------- one case
def run_case(args: argparse.Namespace, scenario: str, J: int) -> dict:
    """Everything measured for one (scenario, J), in this process."""
    from engine.planners.policy import PlannerPolicy
    from scenarios import make

    base = _rss_mb()
    B = size_budget(scenario, J)
    t0 = time.perf_counter()
    env = make(scenario, n_arms=J, budget=B, seed=0)
    make_s = time.perf_counter() - t0
    states = random_states(env.instance, args.states + 1)
    t0 = time.perf_counter()
    policy = PlannerPolicy(scenario, env.instance, args.planner, time_limit=args.time_limit, backend=args.backend)
    first = policy.decide(states[0])
    setup_s = time.perf_counter() - t0
    secs: list[float] = []
    statuses: dict[str, int] = {}
    gaps: list[float] = []
    paths: set[str] = set()
    for s in states[1:]:
        t0 = time.perf_counter()
        d = policy.decide(s)
        secs.append(time.perf_counter() - t0)
        statuses[d.status] = statuses.get(d.status, 0) + 1
        gaps.append(d.gap)
        paths.add(d.reason or ("class-count MILP" if policy._reduction is not None else "domain MILP"))
    out = {
        "scenario": scenario,
        "J": J,
        "B": B,
        "make_s": make_s,
        "setup_s": setup_s,
        "first_status": first.status,
        "median_ms": 1e3 * float(np.median(secs)),
        "p95_ms": 1e3 * float(np.percentile(secs, 95)),
        "statuses": statuses,
        "max_gap": float(np.max(gaps)),
        "path": ", ".join(sorted(paths)),
        "rss_base_mb": base,
        "rss_peak_mb": _rss_mb(),
    }
    out.update(lp_bound_ratio(args, env.instance, policy))
    if args.exact_max >= J:
        out["exact"] = exact_comparison(args, policy, states[1 : args.exact_states + 1])
    return out


def lp_bound_ratio(args: argparse.Namespace, instance, policy) -> dict:
    """The planner's mean expected return as % of the occupancy LP bound, or the reason it is not computed."""
    limit = bound_limits(args.bound_max).get(policy.scenario, 0)
    if instance.n_arms > limit:
        why = f"n/a: J > {limit} for {policy.scenario} (the occupancy LP over J x horizon"
        why += ", with W x J assignments per step)" if policy.scenario != "budgeted" else ")"
        return {"bound_pct": None, "bound_note": why}
    from engine.analysis.evaluation import evaluate
    from engine.analysis.occupancy_bound import occupancy_upper_bound

    t0 = time.perf_counter()
    bound = occupancy_upper_bound(instance, time_limit=args.bound_time_limit)
    bound_s = time.perf_counter() - t0
    run = evaluate(instance, {"planner": policy}, episodes=args.episodes, progress=False)
    value = float(np.mean(run.methods["planner"].expected))
    return {
        "bound_pct": 100.0 * value / bound.bound,
        "bound_note": f"{value:.1f} / {bound.bound:.1f} ({bound.status}, {bound_s:.0f} s)",
    }


def exact_comparison(args: argparse.Namespace, policy, states: list[np.ndarray]) -> dict:
    """Oracle, the policy's default path and the general MILP on the same states (ms; value differences)."""
    from solvers.backends.registry import resolve_backend
    from solvers.oracles import oracle_for

    model = policy.model
    oracle = oracle_for(model)
    solver = resolve_backend(args.backend, mip_rel_gap=1e-6)
    times: dict[str, list[float]] = {"oracle": [], "policy": [], "milp": []}
    diff, milp_gap = 0.0, 0.0
    milp_status: dict[str, int] = {}
    if oracle is not None:  # once-per-model tables (count frontiers, vectors) are set-up, not decision time
        oracle.maximise(np.zeros(model.n_actions))
    for s in states:
        st, ttg = s[:-1], int(s[-1])
        table = policy.planner.table(st, ttg)
        gains, offset = table[:, 1] - table[:, 0], float(table[:, 0].sum())
        values = []
        if oracle is not None:
            t0 = time.perf_counter()
            sol = oracle.maximise(gains, offset)
            times["oracle"].append(1e3 * (time.perf_counter() - t0))
            values.append(sol.objective)
        t0 = time.perf_counter()
        d = policy.decide(s)
        times["policy"].append(1e3 * (time.perf_counter() - t0))
        values.append(d.value)
        t0 = time.perf_counter()
        sol = solver.solve(model.milp(gains, offset), time_limit=args.milp_time_limit, mip_rel_gap=1e-6)
        times["milp"].append(1e3 * (time.perf_counter() - t0))
        milp_status[sol.status] = milp_status.get(sol.status, 0) + 1
        if sol.status == "optimal":  # a time-limited incumbent is reported by its gap, not compared
            values.append(sol.objective)
        milp_gap = max(milp_gap, float(sol.gap))
        diff = max(diff, (max(values) - min(values)) / max(abs(max(values)), 1e-9))
    return {
        "states": len(states),
        "oracle_ms": float(np.median(times["oracle"])) if times["oracle"] else None,
        "policy_ms": float(np.median(times["policy"])),
        "milp_ms": float(np.median(times["milp"])),
        "milp_status": milp_status,
        "milp_max_gap": milp_gap,
        "max_rel_diff": diff,
    }


def bound_limits(spec: str) -> dict[str, int]:
    """``scenario:J,...`` -> {scenario: J}."""
    return {k: int(v) for k, v in (item.split(":") for item in spec.split(",") if item)}


# ---------------------------------------------------------------------------------------- reporting
def _num(v: float | None, fmt: str = ".1f") -> str:
    return "n/a" if v is None else format(v, fmt)


def scale_table(rows: list[dict]) -> str:
    out = [
        "| scenario | J | B | set-up s | median ms | p95 ms | statuses | max gap | path | peak RSS MB (base) "
        "| % of LP bound |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|---:|---|",
    ]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['scenario']} | {r['J']} | | failed: {r['error']} | | | | | | | |")
            continue
        st = ", ".join(f"{k} {v}" for k, v in sorted(r["statuses"].items()))
        pct = r["bound_note"] if r["bound_pct"] is None else f"{r['bound_pct']:.1f}%: {r['bound_note']}"
        out.append(
            f"| {r['scenario']} | {r['J']} | {r['B']} | {r['setup_s']:.2f} | {r['median_ms']:.1f} | "
            f"{r['p95_ms']:.1f} | {st} | {100 * r['max_gap']:.2g}% | {r['path']} | {r['rss_peak_mb']:.0f} "
            f"({r['rss_base_mb']:.0f}) | {pct} |"
        )
    return "\n".join(out)


def exact_table(rows: list[dict]) -> str:
    out = [
        "| scenario | J | states | oracle ms | policy path ms | general MILP ms | MILP statuses | MILP / oracle "
        "| MILP max gap | max rel diff (proven values) |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        e = r.get("exact")
        if not e:
            continue
        st = ", ".join(f"{k} {v}" for k, v in sorted(e["milp_status"].items()))
        ratio = "n/a" if e["oracle_ms"] is None else f"{e['milp_ms'] / max(e['oracle_ms'], 1e-6):.0f}x"
        oracle = "n/a (no oracle applies)" if e["oracle_ms"] is None else f"{e['oracle_ms']:.2f}"
        out.append(
            f"| {r['scenario']} | {r['J']} | {e['states']} | {oracle} | {e['policy_ms']:.2f} | {e['milp_ms']:.1f} "
            f"| {st} | {ratio} | {100 * e['milp_max_gap']:.2g}% | {e['max_rel_diff']:.1e} |"
        )
    return "\n".join(out)


def slopes(rows: list[dict]) -> list[str]:
    """Log-log slope of the median decision time between J = 1,000 and the largest J, per scenario."""
    out = []
    for scen in sorted({r["scenario"] for r in rows}):
        pts = sorted((r["J"], r["median_ms"]) for r in rows if r["scenario"] == scen and "error" not in r)
        pts = [p for p in pts if p[0] >= 1000]
        if len(pts) >= 2:
            (j0, t0), (j1, t1) = pts[0], pts[-1]
            k = np.log(t1 / t0) / np.log(j1 / j0)
            out.append(f"{scen}: decision time x{t1 / t0:.1f} for J x{j1 / j0:.0f} (log-log slope {k:.2f})")
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for scen in sorted({r["scenario"] for r in rows}):
        pts = sorted((r["J"], r["median_ms"], r["p95_ms"]) for r in rows if r["scenario"] == scen and "error" not in r)
        if pts:
            J, med, p95 = (np.array(v) for v in zip(*pts, strict=True))
            line = ax.loglog(J, med, "o-", label=f"{scen} (median)")[0]
            ax.loglog(J, p95, ":", color=line.get_color(), alpha=0.6)
    all_j = np.array(sorted({r["J"] for r in rows}))
    if all_j.size:
        ax.loglog(all_j, 1e3 * all_j / all_j.max(), "k--", alpha=0.4, label="linear (1 s at the largest J)")
    ax.axhline(1000, color="r", lw=0.8, alpha=0.5)
    ax.set_xlabel("arms J")
    ax.set_ylabel("decision time (ms)")
    ax.set_title("Whittle planner decision time (dotted: p95)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


# --------------------------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    p.add_argument("--sizes", default="20,100,1000,10000")
    p.add_argument("--big", action="store_true", help="also J = 100,000 for the budgeted planner")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--planner", default="whittle")
    p.add_argument("--states", type=int, default=20, help="timed decisions per case (after the first)")
    p.add_argument("--time-limit", type=float, default=1.0, help="the policy's MILP time limit per decision (s)")
    p.add_argument(
        "--bound-max",
        default="budgeted:1000,capacity:100,scheduling:100",
        help="largest J per scenario for the LP-bound ratio",
    )
    p.add_argument("--bound-time-limit", type=float, default=120.0)
    p.add_argument("--episodes", type=int, default=4, help="episodes of the policy for the LP-bound ratio")
    p.add_argument("--exact-max", type=int, default=1000, help="largest J for oracle vs general MILP")
    p.add_argument("--exact-states", type=int, default=5)
    p.add_argument("--milp-time-limit", type=float, default=30.0)
    p.add_argument("--backend", default="highs", help="MILP back-end (solvers.backends.registry) of every solve")
    p.add_argument("--plot", type=Path, default=ROOT / "runs" / "bench_scale.png")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # scenario:J, run in this process
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.one:
        scenario, J = args.one.split(":")
        print("RESULT " + json.dumps(run_case(args, scenario, int(J))), flush=True)
        return
    sizes = [int(v) for v in args.sizes.split(",")]
    cases = [(s, J) for s in args.scenarios.split(",") for J in sizes]
    if args.big and "budgeted" in args.scenarios.split(","):
        cases.append(("budgeted", 100_000))
    rows = []
    passthrough = [a for a in sys.argv[1:] if a != "--big"]
    for scenario, J in cases:
        t0 = time.perf_counter()
        cmd = [sys.executable, str(Path(__file__).resolve()), *passthrough, "--one", f"{scenario}:{J}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
        if line is None:
            err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            rows.append({"scenario": scenario, "J": J, "error": err})
            print(f"{scenario} J={J}: failed: {err}", flush=True)
            continue
        r = json.loads(line[len("RESULT ") :])
        rows.append(r)
        print(
            f"{scenario} J={J} B={r['B']}: set-up {r['setup_s']:.2f} s, median {r['median_ms']:.1f} ms, p95 "
            f"{r['p95_ms']:.1f} ms, {r['statuses']}, max gap {100 * r['max_gap']:.2g}%, peak RSS "
            f"{r['rss_peak_mb']:.0f} MB ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    print()
    print(scale_table(rows))
    print()
    print(exact_table(rows))
    print()
    for line in slopes(rows):
        print(line)
    plot(rows, args.plot)
    print(f"plot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
