"""Planners vs the exact DP optimum vs a trained policy on the hard families (issue 16, item 3).

For each family (``overlapping_reach``, ``coverage``, ``switching``, ``pull_limits``, ``worker_budget``, ``patrol``) and
seed, on a tiny instance (J = 6 by default, J = 4 for ``pull_limits``, whose arms have 12 states, and
``worker_budget``: 4 beneficiaries plus 2 worker arms; ``patrol``: 6 sites plus the position arm): the exact DP
optimum (engine.analysis.exact_dp), the exact myopic policy's value (the best available feasible action by expected step
reward, evaluated by DP), on ``pull_limits`` the limit-blind Whittle planner (fitted on the base arms, its argmax
taken over the actions available in the state), each applicable planner's exact value as % of it
(engine.analysis.exact_policy.planner_policy_value: Whittle on arm-pull families only, Lagrangian everywhere), the
trained DQN's greedy policy evaluated exactly (Engine.train + greedy_policy_value) and the certified
bound (the occupancy LP, tightened by the joint action law: engine.analysis.action_law_bound). Prints one row per
(family, seed) as it finishes, then a table with the means.

    python bench/bench_hard_families.py                        # J = 6, seeds 0-4, horizon 20, 100 episodes
    python bench/bench_hard_families.py --families coverage --seeds 0 1 --episodes 20 --json out.json

Budgets default to each family's issue setting (overlapping_reach: B = 4 of N = 8 interventions;
coverage, switching and pull_limits: B = 2 arms; worker_budget: W = 2 workers of 6 calls each; patrol: B = 2 sites
inspected per step, T = 2 moves). Torch runs on one thread (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FAMILIES = ("overlapping_reach", "coverage", "switching", "pull_limits", "worker_budget", "patrol")
BUDGET = {
    "overlapping_reach": 4,
    "coverage": 2,
    "switching": 2,
    "pull_limits": 2,
    "worker_budget": 2,
    "patrol": 2,
}
# pull_limits: 12 states per arm (3 base states x 4 pull counts): 12^4 joint states; worker_budget: 4 beneficiaries
# (3 states) and 2 workers (7 states: 6 calls each): 81 x 49 joint states
ARMS = {"pull_limits": 4, "worker_budget": 4}


def myopic_value(instance, exact) -> float:
    """Exact value of the myopic policy: each state's best available feasible action by expected step reward."""
    import numpy as np

    from engine.analysis.exact_dp import closed_actions, joint_states, policy_value, reward_table

    states = joint_states(exact.counts)
    reward = reward_table(instance, states, exact.actions)
    reward[closed_actions(instance, states, exact.actions)] = -np.inf
    choice = exact.actions[np.argmax(reward, axis=0)]
    return policy_value(instance, lambda s, h: choice, exact.actions)


PLANNERS = ("whittle", "lagrangian", "action_law")


def unaware_value(instance, exact) -> float:
    """pull_limits: exact value of the Whittle planner of the base arms (blind to the limits), its argmax taken
    over the actions available in each state: what planning without the limits, then repairing, achieves."""
    import numpy as np

    from engine.analysis.exact_dp import closed_actions, joint_states, policy_value
    from engine.planners import make_planner
    from engine.planners.arm_values import joint_values
    from scenarios.cormab.budgeted import BudgetedInstance
    from scenarios.pull_limits import counter_sizes

    U, W = counter_sizes(instance.max_pulls, instance.cooldown)
    blind = make_planner("whittle", BudgetedInstance(arms=instance.base_arms(), budget=instance.budget))
    states = joint_states(exact.counts)
    closed = closed_actions(instance, states, exact.actions).T  # (S, K)

    def policy(s: np.ndarray, h: int) -> np.ndarray:
        tables = blind.tables(s // (U * W), h)
        scores = joint_values(tables, blind.structure, np.broadcast_to(exact.actions, (len(s), *exact.actions.shape)))
        return exact.actions[np.argmax(np.where(closed, -np.inf, scores), axis=1)]

    return policy_value(instance, policy, exact.actions)


def run_one(family: str, seed: int, n_arms: int | None, horizon: int, episodes: int, budget: int | None) -> dict:
    import torch

    from engine import DQNConfig, Engine
    from engine.analysis.action_law_bound import tightest_upper_bound
    from engine.analysis.exact_dp import exact_optimum
    from engine.analysis.exact_policy import greedy_policy_value, planner_policy_value
    from engine.analysis.occupancy_bound import occupancy_upper_bound
    from engine.planners import make_planner
    from scenarios import make
    from scenarios.errors import InvalidInputError

    start = time.perf_counter()
    b = BUDGET[family] if budget is None else budget
    n_arms = ARMS.get(family, 6) if n_arms is None else n_arms
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
        "myopic_pct": 100.0 * myopic_value(instance, exact) / exact.value,
    }
    if family == "pull_limits":
        row["unaware_pct"] = 100.0 * unaware_value(instance, exact) / exact.value
    for name in PLANNERS:
        try:
            planner = make_planner(name, instance)
        except InvalidInputError:  # Whittle needs one pull per arm
            row[f"{name}_pct"] = None
            continue
        row[f"{name}_pct"] = 100.0 * planner_policy_value(planner, exact) / exact.value
    occupancy = occupancy_upper_bound(instance)
    row["bound"] = tightest_upper_bound(instance, occupancy=occupancy).bound
    row["bound_pct"] = 100.0 * row["bound"] / exact.value
    row["occupancy_bound_pct"] = 100.0 * occupancy.bound / exact.value
    if episodes > 0:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        engine = Engine.train(env, DQNConfig(episodes=episodes), seed=seed, progress=False)
        row["train_seconds"] = time.perf_counter() - t0
        row["trained_pct"] = 100.0 * greedy_policy_value(engine, exact) / exact.value
        summary = getattr(engine, "training_summary", {})
        row["kept_planner"] = bool(summary.get("kept_planner"))  # the planner decides instead of the network
        row["selected_snapshot"] = summary.get("selected_snapshot")  # 0: the untrained network, i.e. the prior
        row["kept_planner_name"] = summary.get("kept_planner_name", "")  # a candidate planner won the final choice
    else:
        row["trained_pct"] = None
    row["seconds"] = time.perf_counter() - start
    return row


def _fmt(v: float | None, digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def table(rows: list[dict]) -> str:
    """Markdown table: one row per (family, seed), then the mean (and minimum) per family."""
    lines = [
        "| family | seed | optimum | myopic % | limit-blind whittle % | whittle % | lagrangian % | action-law % | "
        "trained % | bound % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['family']} | {r['seed']} | {r['optimum']:.2f} | {_fmt(r.get('myopic_pct'))} | "
            f"{_fmt(r.get('unaware_pct'))} | {_fmt(r['whittle_pct'])} | "
            f"{_fmt(r['lagrangian_pct'])} | {_fmt(r.get('action_law_pct'))} | {_fmt(r['trained_pct'])} | "
            f"{_fmt(r['bound_pct'])} |"
        )
    for family in dict.fromkeys(r["family"] for r in rows):
        fam = [r for r in rows if r["family"] == family]
        for label, agg in (("mean", lambda xs: sum(xs) / len(xs)), ("min", min)):
            cells = []
            keys = ("myopic_pct", "unaware_pct", "whittle_pct", "lagrangian_pct", "action_law_pct", "trained_pct")
            for key in (*keys, "bound_pct"):
                xs = [r[key] for r in fam if r.get(key) is not None]
                cells.append(_fmt(agg(xs)) if xs else "n/a")
            opt = agg([r["optimum"] for r in fam])
            lines.append(f"| {family} | **{label}** | {opt:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Each method's exact value as % of the DP optimum, one group of bars per (family, seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [
        k
        for k in ("myopic", "unaware", "whittle", "lagrangian", "trained")
        if any(r.get(f"{k}_pct") is not None for r in rows)
    ]
    labels = {"unaware": "limit-blind whittle", "trained": "trained (DQN)"}
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 3.5))
    width = 0.8 / len(keys)
    for i, k in enumerate(keys):
        ys = [r.get(f"{k}_pct") or 0.0 for r in rows]
        ax.bar([j + (i - (len(keys) - 1) / 2) * width for j in range(len(rows))], ys, width, label=labels.get(k, k))
    ax.axhline(100.0, color="k", lw=0.8)
    ax.set_xticks(range(len(rows)), [f"{r['family'][:11]} {r['seed']}" for r in rows], rotation=30, fontsize=8)
    ax.set_ylabel("% of the DP optimum")
    low = min((r.get(f"{k}_pct") or 100.0) for r in rows for k in keys)
    ax.set_ylim(max(0.0, min(90.0, low - 3)), 101)
    ax.legend(fontsize=8, ncol=len(keys))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--n-arms", type=int, default=None, help="default: 6 (pull_limits: 4)")
    p.add_argument("--budget", type=int, default=None, help="default: the family's issue setting")
    p.add_argument("--horizon", type=int, default=20)
    p.add_argument("--episodes", type=int, default=100, help="DQN training episodes (0: planners only)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--plot", type=Path, default=Path("runs/bench_hard_families.png"))
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for family in args.families:
        for seed in args.seeds:
            row = run_one(family, seed, args.n_arms, args.horizon, args.episodes, args.budget)
            rows.append(row)
            print(
                f"{family} seed {seed}: optimum {row['optimum']:.3f}, myopic {_fmt(row['myopic_pct'])}%, "
                f"whittle {_fmt(row['whittle_pct'])}%, "
                f"lagrangian {_fmt(row['lagrangian_pct'])}%, trained {_fmt(row['trained_pct'])}%, "
                f"bound {_fmt(row['bound_pct'])}% ({row['seconds']:.0f} s)",
                flush=True,
            )
            if args.json:
                args.json.write_text(
                    json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2)
                )
    print(table(rows))
    plot(rows, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
