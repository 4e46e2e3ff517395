"""LP-update's two roundings compared on the same episodes: ``duals`` (the Lagrangian table with prices
re-solved at the state) against ``marginals`` (the LP's first-step action marginals, Lagrangian tie-break).

    python bench/bench_lp_update_rounding.py [--domains capacity scheduling multi_intervention] [--seeds 0 1]
                                             [--n-arms 20] [--budget 5] [--episodes 10] [--warm-start]

Per (domain, seed): each rounding's mean expected return over the same episodes (common random numbers) and the
paired difference marginals - duals with its 95% bootstrap interval; the Whittle planner beside them where it
applies (arm-pull domains) as the reference planner. One row per case as it finishes.

``--warm-start`` compares instead the ``duals`` rounding solved warm (simplex from the basis of the LP from the
initial distribution, the default) and cold (``warm_start=False``): returns, paired difference warm - cold and the
median milliseconds per decision (the warm start's reference solves fall on the first decision at each time to
go).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_case(domain: str, seed: int, n_arms: int, budget: int, episodes: int) -> str:
    from engine import Engine
    from engine.analysis.evaluation import evaluate
    from engine.planners.lp_update import LPUpdatePlanner
    from engine.planners.policy import PlannerPolicy
    from scenarios import make

    env = make(domain, n_arms=n_arms, budget=budget, seed=seed)
    instance = env.instance
    policies = {
        rounding: PlannerPolicy(env.scenario, instance, LPUpdatePlanner(instance, rounding=rounding).fit())
        for rounding in ("duals", "marginals")
    }
    if instance.action_model().structure is not None and domain != "multi_intervention":
        policies["whittle"] = Engine.plan(env, "whittle")
    start = time.perf_counter()
    result = evaluate(instance, policies, episodes=episodes, seed=seed, reference="duals", progress=False)
    means = {name: result.methods[name].summary()["mean_expected_return"] for name in policies}
    diff = result.paired_difference("marginals", "duals")
    whittle = f"{means['whittle']:.2f}" if "whittle" in means else "n/a"
    return (
        f"| {domain} | {seed} | {means['duals']:.2f} | {means['marginals']:.2f} | {whittle} "
        f"| {diff['mean']:+.2f} [{diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f}] | {time.perf_counter() - start:.0f} |"
    )


def run_warm_case(domain: str, seed: int, n_arms: int, budget: int, episodes: int) -> str:
    from engine.analysis.evaluation import evaluate
    from engine.planners.lp_update import LPUpdatePlanner
    from engine.planners.policy import PlannerPolicy
    from scenarios import make

    env = make(domain, n_arms=n_arms, budget=budget, seed=seed)
    instance = env.instance
    policies = {
        name: PlannerPolicy(env.scenario, instance, LPUpdatePlanner(instance, warm_start=warm).fit())
        for name, warm in (("warm", True), ("cold", False))
    }
    result = evaluate(instance, policies, episodes=episodes, seed=seed, reference="cold", progress=False)
    summary = {name: result.methods[name].summary() for name in policies}
    diff = result.paired_difference("warm", "cold")
    return (
        f"| {domain} | {seed} | {summary['warm']['mean_expected_return']:.2f} "
        f"| {summary['cold']['mean_expected_return']:.2f} "
        f"| {diff['mean']:+.2f} [{diff['ci95'][0]:+.2f}, {diff['ci95'][1]:+.2f}] "
        f"| {1e3 * summary['warm']['decision_seconds']['median']:.0f} "
        f"| {1e3 * summary['cold']['decision_seconds']['median']:.0f} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--domains", nargs="+", default=["capacity", "scheduling", "multi_intervention"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--n-arms", type=int, default=20)
    p.add_argument("--budget", type=int, default=5)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--warm-start", action="store_true", help="compare warm and cold LP solves instead")
    args = p.parse_args()
    if args.warm_start:
        print("| domain | seed | warm | cold | warm - cold (95% CI) | warm ms | cold ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for domain in args.domains:
            for seed in args.seeds:
                print(run_warm_case(domain, seed, args.n_arms, args.budget, args.episodes), flush=True)
        return
    print("| domain | seed | duals | marginals | Whittle | marginals - duals (95% CI) | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for domain in args.domains:
        for seed in args.seeds:
            print(run_case(domain, seed, args.n_arms, args.budget, args.episodes), flush=True)


if __name__ == "__main__":
    main()
