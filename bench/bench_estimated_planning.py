"""Planning on estimated dynamics: how much return is lost by planning on a model estimated from a log?

    python bench/bench_estimated_planning.py [--episodes 50] [--select-episodes 20] [--sizes 1000 10000 100000]

A 30-arm synthetic programme (3 states, 2 actions, 3 clusters; :func:`synthetic_programme`), rewards on
arrival 0 / 0.5 / 1 by state, horizon 20. For each log size, the dynamics are estimated with pooling by the
true clusters and the posterior mean becomes the arms of the estimated model (:mod:`scenarios.estimation.to_arms`).
Whittle and Lagrangian planners are fitted on the estimated model and on the true model, and every policy is
evaluated on the TRUE model with common random numbers (the same episode seeds, so differences are paired).
"best" is the planner with the higher return on its own model: for the estimate, judged by simulating the
estimated model (what a programme can do without the truth); for the truth, on the truth. Two domains: a
budget of 6 calls per week, and 4 workers with capacities (call costs 1..3) plus "at most 2 calls per
district" (6 districts of 5). Printed per domain and log size: each policy's mean return on the truth, the
ratio estimated / true (target >= 95%), the share of the true planner's gain over calling no one that the
estimated planner keeps ("gain kept": (est - null) / (true - null), a stricter measure since most of the return
comes from the arms' passive drift), the paired difference with its bootstrap 95% interval, and the true
model's occupancy-LP upper bound. Runs on one core; seeds are fixed.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.analysis.evaluation import Evaluation, evaluate  # noqa: E402
from engine.analysis.occupancy_bound import occupancy_upper_bound  # noqa: E402
from engine.baselines.cormab import NullPolicy  # noqa: E402
from engine.planners.policy import PlannerPolicy  # noqa: E402
from scenarios import load_instance  # noqa: E402
from scenarios.arms import Arms  # noqa: E402
from scenarios.estimation import Pooling, estimate_dynamics, simulate_log, synthetic_programme  # noqa: E402
from scenarios.estimation.to_arms import PosteriorArms  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
PLANNERS = ("whittle", "lagrangian")
REWARDS = (0.0, 0.5, 1.0)
HORIZON, BUDGET, N_DISTRICTS, DISTRICT_CAP = 20, 6, 6, 2
CAPACITIES = (3, 4, 4, 5)


def domains(arms: Arms, seed: int) -> dict[str, tuple[str, dict]]:
    """(scenario, instance dict) of each benchmark domain over ``arms``."""
    rng = np.random.default_rng([seed, 7])
    costs = rng.integers(1, 4, arms.n_arms).tolist()
    districts = (np.arange(arms.n_arms) % N_DISTRICTS).tolist()
    district_cap = {"kind": "group_cap", "groups": districts, "caps": [DISTRICT_CAP] * N_DISTRICTS}
    return {
        f"budget {BUDGET}": ("budgeted", {"arms": arms.model_dump(), "budget": BUDGET}),
        "workers + district caps": (
            "capacity",
            {"arms": arms.model_dump(), "costs": costs, "capacities": list(CAPACITIES), "constraints": [district_cap]},
        ),
    }


def policies(scenario: str, instance, tag: str) -> dict[str, PlannerPolicy]:
    return {f"{name} ({tag})": PlannerPolicy(scenario, instance, name) for name in PLANNERS}


def mean_return(run: Evaluation, name: str) -> float:
    return float(np.mean(run.methods[name].expected))


def best(run: Evaluation, tag: str) -> str:
    return max((f"{p} ({tag})" for p in PLANNERS), key=lambda name: mean_return(run, name))


def report(run: Evaluation, est: str, true: str, label: str) -> None:
    diff = run.paired_difference(est, true)
    lo, hi = diff["ci95"]
    e, t, null = mean_return(run, est), mean_return(run, true), mean_return(run, "null")
    ratio = e / t
    print(
        f"  {label:<32} {e:8.2f} {t:8.2f} {100 * ratio:7.1f}% {100 * (e - null) / (t - null):8.1f}% "
        f"{diff['mean']:+8.3f} [{lo:+.3f}, {hi:+.3f}]{'' if ratio >= 0.95 else '   < 95%'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--select-episodes", type=int, default=20, help="episodes to pick the best estimated planner")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    programme = synthetic_programme(seed=args.seed)
    known = {"arrival_rewards": list(REWARDS), "initial": programme.initial, "horizon": HORIZON}
    truth = PosteriorArms(estimate_dynamics(np.zeros_like(programme.transitions)), **known).arms(programme.transitions)
    seeds = [args.seed * 1_000_003 + e for e in range(args.episodes)]
    print(
        f"30-arm synthetic programme (3 states, 2 actions, 3 clusters, seed {args.seed}), rewards on arrival "
        f"{REWARDS}, horizon {HORIZON}; {args.episodes} evaluation episodes on the TRUE model, common random numbers"
    )
    true_domains = domains(truth, args.seed)
    for domain, (scenario, data) in true_domains.items():
        true_instance = load_instance(scenario, data)
        start = time.perf_counter()
        bound = occupancy_upper_bound(true_instance)
        true_policies: dict = {**policies(scenario, true_instance, "true"), "null": NullPolicy(true_instance)}
        true_run = evaluate(true_instance, true_policies, episode_seeds=seeds, progress=False)
        print(
            f"\n== {domain} ==  LP upper bound (true model) {bound.bound:.2f}; true-model planners: "
            + ", ".join(f"{n} {mean_return(true_run, n):.2f}" for n in true_policies)
            + f"  ({time.perf_counter() - start:.1f} s)"
        )
        for n in args.sizes:
            start = time.perf_counter()
            log = simulate_log(
                programme.transitions,
                n,
                np.random.default_rng(args.seed + n),
                initial=programme.initial,
                arm_weights=programme.arm_weights,
            )
            posterior = estimate_dynamics(log, pooling=Pooling(clusters=programme.clusters))
            estimate = PosteriorArms(posterior, **known).mean_arms()
            est_instance = load_instance(scenario, domains(estimate, args.seed)[domain][1])
            est_policies = policies(scenario, est_instance, "est")
            # the best estimated planner is chosen by simulating the estimated model, not the truth
            own = evaluate(est_instance, est_policies, episode_seeds=seeds[: args.select_episodes], progress=False)
            run = evaluate(true_instance, est_policies, episode_seeds=seeds, progress=False)
            run.methods.update(true_run.methods)  # same episode seeds: paired with the true-model planners
            error = float(np.abs(posterior.mean() - programme.transitions).max())
            print(
                f" {n:>7,} records (max |P - P_true| {error:.3f}, {time.perf_counter() - start:.1f} s)"
                f"\n  {'planner':<32} {'est':>8} {'true':>8} {'ratio':>8} {'gain kept':>9} {'est - true [95% CI]':>26}"
            )
            for p in PLANNERS:
                report(run, f"{p} (est)", f"{p} (true)", p)
            best_est, best_true = best(own, "est"), best(true_run, "true")
            report(run, best_est, best_true, f"best ({best_est.split()[0]} vs {best_true.split()[0]})")
            print(f"  {'% of LP bound (best est)':<32} {100 * mean_return(run, best_est) / bound.bound:8.1f}%")


if __name__ == "__main__":
    main()
