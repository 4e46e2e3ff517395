"""Bandit benchmarks: prints a table of measured figures, targets and ratios.

    python bench/bench_bandits.py [--quick] [--plots DIR]

Runs on one core (thread pools pinned to 1 before numpy is imported). Seeds are fixed.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bandits import (  # noqa: E402
    CUCB,
    ActionModelOracle,
    BernoulliSemiBandit,
    CombinatorialThompson,
    ContextualSemiBandit,
    KnapsackOracle,
    LagrangianPolicy,
    LearningWhittlePolicy,
    LinearThompson,
    LinUCB,
    LPBound,
    MatchingOracle,
    NeuralThompson,
    NeuralUCB,
    RestlessArms,
    TopKOracle,
    WhittlePolicy,
    WhittleRepairPolicy,
    from_cormab,
    simulate,
    whittle_indices,
)
from bandits.experiments import plot_regret, run_regret  # noqa: E402
from scenarios.cormab.capacity import CapacityInstance  # noqa: E402
from scenarios.cormab.instance import generate_arms  # noqa: E402

ROWS: list[tuple[str, str, str, str]] = []


def row(name: str, value: str, target: str = "", ratio: str = "") -> None:
    ROWS.append((name, value, target, ratio))
    print(f"  {name:<58} {value:>22} {target:>12} {ratio:>10}", flush=True)


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def scalar_index(P, R, s, discount, lo=-20.0, hi=20.0):
    """Brute force for one binary arm: plain value iteration per probe, scan then bisection."""
    S = len(R)

    def adv(lam):
        V = [0.0] * S
        while True:
            Q = [
                [R[x][a] - lam * a + discount * sum(P[a][x][n] * V[n] for n in range(S)) for a in (0, 1)]
                for x in range(S)
            ]
            new = [max(q) for q in Q]
            if max(abs(u - v) for u, v in zip(new, V, strict=True)) < 1e-13:
                return Q[s][1] - Q[s][0]
            V = new

    grid = np.linspace(lo, hi, 81)
    vals = [adv(x) for x in grid]
    i = next(i for i in range(80) if vals[i] > 0 >= vals[i + 1])
    a, b = grid[i], grid[i + 1]
    for _ in range(45):
        m = 0.5 * (a + b)
        a, b = (m, b) if adv(m) > 0 else (a, m)
    return 0.5 * (a + b)


def bench_whittle(quick: bool) -> None:
    print("\nWhittle indices (coRMAB arms, 4 states, discount 0.95)")
    n = 10_000
    arms = from_cormab(generate_arms(n, n // 10, 0))
    arms.arrays()
    t_fast, w = best_time(lambda: whittle_indices(arms, 0.95, check=False), 2 if quick else 3)
    row(f"{n} arms, indices only (s)", f"{t_fast:.3f}", "<= 1.0", f"{t_fast / 1.0:.2f}")
    t_full, w = best_time(lambda: whittle_indices(arms, 0.95), 2 if quick else 3)
    row(f"{n} arms, indices + exact indexability check (s)", f"{t_full:.3f}", "<= 1.0", f"{t_full / 1.0:.2f}")
    row("  probes (exact solves per index)", f"{w.probes}")
    row("  indexable arms", f"{int(w.indexable.sum())}/{n}")
    m = 1000
    t_fh, _ = best_time(lambda: whittle_indices(arms.subset(np.arange(m)), 1.0, horizon=20), 1)
    row(f"{m} arms, finite horizon H=20 (80 indices per arm) (s)", f"{t_fh:.3f}")
    small = from_cormab(generate_arms(5, 1, 7))
    P, R, _, _ = small.arrays()
    ws = whittle_indices(small, 0.95)
    err = max(
        abs(scalar_index(P[i].tolist(), R[i].tolist(), s, 0.95) - ws.values[i, s, 0])
        for i in range(5)
        for s in range(4)
    )
    row("max |vectorised - scalar brute force|, 5 arms", f"{err:.1e}", "<= 1e-6", f"{err / 1e-6:.1e}")


def bench_restless(quick: bool, plots: Path) -> None:
    print("\nRestless: 100 coRMAB arms, B = 10, horizon 20 (per-period budget)")
    arms = from_cormab(generate_arms(100, 10, 0))
    H, B, E = 20, 10, 200 if quick else 1000
    t, lp = best_time(lambda: LPBound(arms, B, horizon=H).fit(), 1)
    row("LP upper bound (expected return)", f"{lp.value:.2f}")
    row("  LP solve time (s)", f"{t:.2f}")
    policies = {
        "Whittle, finite-horizon indices": WhittlePolicy(arms, B, discount=1.0, horizon=H),
        "Whittle, discounted indices (0.95)": WhittlePolicy(arms, B, discount=0.95),
        "Lagrangian (LP prices)": LagrangianPolicy(arms, B, horizon=H, bound=lp),
        "Myopic (top-B immediate gain)": _Myopic(arms, B),
    }
    for name, pol in policies.items():
        res = simulate(arms, pol, B, H, n_episodes=E, seed=0)
        row(
            f"{name}: return +- se",
            f"{res['mean']:.2f} +- {res['stderr']:.2f}",
            ">= 95% LP" if name.startswith("Whittle, finite") else "",
            f"{res['mean'] / lp.value:.3f}",
        )
    inst = CapacityInstance.generate(n_arms=100, budget=10, seed=0)
    repair = WhittleRepairPolicy(from_cormab(inst.arms), inst.action_model(), discount=1.0, horizon=H)
    states = np.random.default_rng(0).integers(0, 4, (5, 100))
    t, _ = best_time(lambda: [repair.select(s, time_to_go=H) for s in states], 1)
    row("Whittle repair under capacity ActionModel, s/decision", f"{t / 5:.3f}")

    print("\nRestless learning (Dirichlet posterior sampling and UCB), 100 arms, B = 10, regret vs known-P Whittle")
    table = np.asarray(generate_arms(100, 10, 0).arrival_rewards)
    episodes = 40 if quick else 100
    res = run_regret(
        arms,
        {
            "thompson": lambda s: LearningWhittlePolicy(table, B, discount=0.95, replan_every=H, seed=s),
            "ucb": lambda s: LearningWhittlePolicy(table, B, discount=0.95, method="ucb", replan_every=H, seed=s),
        },
        rounds=episodes,
        seeds=(0, 1, 2),
        budget=B,
        episode_length=H,
    )
    for name, s in res["summary"].items():
        row(
            f"{name}: regret 1st half / 2nd half ({episodes} episodes)",
            f"{s['first_half']:.1f} / {s['second_half']:.1f}",
            "2nd < 1st",
            f"{s['second_half'] / s['first_half']:.2f}",
        )
        row(f"{name}: log-log slope of cumulative regret", f"{s['loglog_slope']:.2f}", "< 1")
    plot_regret(res, plots / "restless_learning.png")


class _Myopic:
    """Top-B by immediate gain r(s, 1) - r(s, 0) (a baseline)."""

    def __init__(self, arms: RestlessArms, budget: int) -> None:
        _, R, _, _ = arms.arrays()
        self.gain, self.budget = R[..., 1] - R[..., 0], budget

    def select(self, states, time_to_go=None):
        g = self.gain[np.arange(self.gain.shape[0]), states]
        top = np.argsort(-g, axis=-1, kind="stable")[..., : self.budget]
        out = np.zeros(states.shape, dtype=np.int64)
        np.put_along_axis(out, top, 1, -1)
        return out

    def update(self, *args) -> None:
        pass


def bench_combinatorial(quick: bool, plots: Path) -> None:
    print("\nCombinatorial semi-bandits: Bernoulli arms, pseudo-regret vs the best fixed subset")
    rng = np.random.default_rng(3)
    rounds = 1000 if quick else 3000
    for label, oracle, means in (
        ("top-k (30 arms, k = 5)", TopKOracle(30, 5), rng.uniform(0.1, 0.9, 30)),
        ("knapsack (20 arms, cap 12)", KnapsackOracle(rng.integers(1, 6, 20), 12), rng.uniform(0.1, 0.9, 20)),
    ):
        env = BernoulliSemiBandit(means, oracle)
        res = run_regret(
            env,
            {
                "CUCB": lambda s, o=oracle: CUCB(o, seed=s),
                "CTS": lambda s, o=oracle: CombinatorialThompson(o, seed=s, propensity_samples=0),
            },
            rounds=rounds,
            seeds=(0, 1, 2),
        )
        for name, s in res["summary"].items():
            row(
                f"{label} {name}: regret 1st / 2nd half",
                f"{s['first_half']:.1f} / {s['second_half']:.1f}",
                "2nd < 1st",
                f"{s['second_half'] / s['first_half']:.2f}",
            )
            row(f"{label} {name}: log-log slope", f"{s['loglog_slope']:.2f}", "< 1")
        plot_regret(res, plots / f"semi_bandit_{oracle.kind}.png")

    print("\nContextual, non-linear reward (x . theta)^2, 20 arms, top-4, dim 5")
    oracle = TopKOracle(20, 4)
    env = ContextualSemiBandit(oracle, dim=5, reward="quadratic", noise=0.1, seed=0)
    r = 300 if quick else 500
    res = run_regret(
        env,
        {
            "LinUCB": lambda s: LinUCB(oracle, 5, seed=s, propensity_samples=0),
            "LinTS": lambda s: LinearThompson(oracle, 5, scale=0.3, seed=s, propensity_samples=0),
            "CN-UCB": lambda s: NeuralUCB(oracle, 5, scale=0.3, train_every=10, seed=s, propensity_samples=0),
            "CN-TS": lambda s: NeuralThompson(oracle, 5, scale=0.3, train_every=10, seed=s, propensity_samples=0),
        },
        rounds=r,
        seeds=(0, 1),
    )
    lin = res["summary"]["LinUCB"]["final"]
    for name, s in res["summary"].items():
        row(
            f"{name}: cumulative regret after {r} rounds",
            f"{s['final']:.1f} +- {s['final_stderr']:.1f}",
            "neural < linear" if name.startswith("CN") else "",
            f"{s['final'] / lin:.2f}",
        )
    plot_regret(res, plots / "neural_vs_linear.png")

    print("\nOracle time per call (median of 200, ms)")
    w = np.random.default_rng(0).normal(size=(200, 100))
    inst = CapacityInstance.generate(n_arms=30, budget=5, seed=0)
    for label, oracle, width in (
        ("top-k, 100 arms", TopKOracle(100, 10), 100),
        (
            "knapsack DP, 100 arms, capacity 200",
            KnapsackOracle(np.random.default_rng(1).integers(1, 20, 100), 200),
            100,
        ),
        (
            "matching, 10 x 10 complete (100 edges)",
            MatchingOracle(10, 10, [[i, j] for i in range(10) for j in range(10)]),
            100,
        ),
        ("ActionModel MILP (capacity, 30 arms, 5 workers)", ActionModelOracle(inst.action_model()), 30),
    ):
        times = []
        for k in range(200 if width == 100 else 50):
            start = time.perf_counter()
            oracle.solve(w[k, :width])
            times.append(time.perf_counter() - start)
        row(label, f"{1000 * np.median(times):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer episodes and rounds")
    parser.add_argument("--plots", default=None, help="directory for regret PNGs (default: a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    plots = Path(args.plots or tempfile.mkdtemp(prefix="redwood_bandits_"))
    plots.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"  {'figure':<58} {'measured':>22} {'target':>12} {'ratio':>10}")
    bench_whittle(args.quick)
    bench_restless(args.quick, plots)
    bench_combinatorial(args.quick, plots)
    print(f"\nplots: {plots}\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
