"""Exact-decision envelope per back-end and bound tightening, on trained networks (issue 4).

    python bench/bench_backends.py --quick      # capacity J = 20 only, 5 states: < 3 min
    python bench/bench_backends.py              # 4 domains at J = 20 (16x32), capacity 32 and 32x32, J = 100

Networks are fitted to the one-step expected reward (the DQN warm start, ``DQNConfig(episodes=0,
prior="none")``) twice:
plain and MILP-friendly (ReLU stability + L1 + pruning, :mod:`engine.sequoia.milp_friendly`); they are cached under
``runs/bench_backends/`` (gitignored; ``--retrain`` refits). For each network the same states (a random
feasible roll-out) are decided by the MIP selector with each back-end and tightening option at a 1% gap;
the table gives the median and p90 decision wall time (greedy incumbent + bounds + solve), the fraction
certified (gap <= 1%) within the time limit, and the unstable neurons left; the median CPU time of the process is
printed next to the wall time because the machine is shared. The envelope lists what
solves exactly in under 0.1 s, 1 s and 10 s (median, all certified). The return of the exact policy
(``auto`` selector) of the plain and regularised networks is compared on common random numbers.
Wall-clock figures: the machine is shared, so they include whatever else was running.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine import DQNConfig, Engine
from engine.analysis.evaluation import EnginePolicy, evaluate
from engine.sequoia.selectors.mip import MipSelector
from scenarios import make

CACHE = Path("runs/bench_backends")
REGULARISED = {"stability_weight": 1e-2, "l1_weight": 1e-6, "prune_threshold": 1e-3}


@dataclass
class Row:
    label: str
    backend: str
    tightening: str
    median: float
    p90: float
    cpu: float
    certified: float
    unstable: float
    n: int


def make_env(domain: str, J: int, seed: int = 0):
    return make(domain, n_arms=J, budget=5, seed=seed)


def trained(
    domain: str, J: int, hidden: tuple[int, ...], regularised: bool, samples: int, epochs: int, retrain: bool = False
) -> Engine:
    """Fit (or load from the cache) a Q-network on one-step expected rewards."""
    tag = f"{domain}_J{J}_{'x'.join(map(str, hidden))}_{'reg' if regularised else 'plain'}_{samples}x{epochs}"
    path = CACHE / tag
    if (path / "config.json").exists() and not retrain:
        return Engine.load(path)
    # no reward prior: the network itself carries the one-step reward, so the MILP has something to solve
    cfg = DQNConfig(
        hidden=hidden,
        episodes=0,
        warm_start_samples=samples,
        warm_start_epochs=epochs,
        prior="none",
        **(REGULARISED if regularised else {}),
    )
    t0 = time.perf_counter()
    engine = Engine.train(make_env(domain, J), cfg, seed=0, progress=False)
    print(f"  trained {tag} in {time.perf_counter() - t0:.1f} s", flush=True)
    engine.save(path)
    return engine


def roll_out_states(engine: Engine, n: int, seed: int = 1) -> list[np.ndarray]:
    """Observations along random feasible roll-outs (the states a policy meets)."""
    env = engine.instance.make_env()
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out = []
    while len(out) < n:
        out.append(np.asarray(obs).copy())
        obs, _, done, _, _ = env.step(engine.model.sample(rng))
        if done:
            obs, _ = env.reset(seed=int(rng.integers(2**31)))
    return out


def time_decisions(
    engine: Engine, states: list[np.ndarray], backend: str, tightening: str, time_limit: float, label: str
) -> Row:
    sel = MipSelector(mip_rel_gap=0.01, time_limit=time_limit, backend=backend, tightening=tightening)
    sel.select(engine.state_q(states[0]))  # compile once, outside the timing
    secs, cpu, certified, unstable = [], [], [], []
    for s in states:
        t0, c0 = time.perf_counter(), time.process_time()
        d = sel.select(engine.state_q(s))
        secs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        certified.append(d.status == "optimal" and d.gap <= 0.01 + 1e-9)
        unstable.append((sel.last_stable_counts or {}).get("unstable", np.nan))
    return Row(
        label,
        backend,
        tightening,
        float(np.median(secs)),
        float(np.quantile(secs, 0.9)),
        float(np.median(cpu)),
        float(np.mean(certified)),
        float(np.nanmean(unstable)),
        len(secs),
    )


def policy_return(engine: Engine, episodes: int, seed: int = 123) -> float:
    """Mean expected return of the exact policy (``auto``: enumeration up to 20k feasible actions, else the MILP
    with a 1 s limit) over ``episodes`` common-random-number episodes."""
    run = evaluate(
        engine.instance,
        {"exact": EnginePolicy(engine, "auto", 1.0)},
        episode_seeds=[seed + k for k in range(episodes)],
        progress=False,
    )
    return float(np.mean(run.methods["exact"].expected))


def print_rows(rows: list[Row]) -> None:
    print("\n| network | back-end | bounds | median ms | p90 ms | median CPU ms | certified | unstable | n |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.label} | {r.backend} | {r.tightening} | {1000 * r.median:.1f} | {1000 * r.p90:.1f} | "
            f"{1000 * r.cpu:.1f} | "
            f"{100 * r.certified:.0f}% | {r.unstable:.1f} | {r.n} |"
        )


def envelope(rows: list[Row]) -> None:
    print("\nEnvelope (median decision wall time, every decision certified at gap <= 1%):")
    for limit in (0.1, 1.0, 10.0):
        ok = sorted(
            {f"{r.label} [{r.backend}/{r.tightening}]" for r in rows if r.certified == 1.0 and r.median < limit}
        )
        print(f"  < {limit:g} s: {', '.join(ok) if ok else '(none)'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="capacity J=20 only, few states (< 3 min)")
    ap.add_argument("--states", type=int, default=None)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--retrain", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the machine is shared: one thread avoids oversubscription in the small matmuls
    quick = args.quick
    n_states = args.states or (5 if quick else 10)
    limit = args.time_limit or (2.0 if quick else 5.0)
    samples, epochs = 2048, 60
    domains = ["capacity"] if quick else ["capacity", "scheduling", "routing", "multi_intervention"]
    configs = [("highs", "interval"), ("highs", "lp")]
    others = [] if quick else [("scip", "interval"), ("scip", "lp"), ("pyomo", "interval")]
    start = time.perf_counter()
    rows: list[Row] = []
    speedups, returns = [], []
    print(
        f"bench_backends: {'quick' if quick else 'full'}; {n_states} states per network, time limit {limit:g} s, "
        f"networks fitted on {samples} samples x {epochs} epochs; shared machine, wall-clock figures",
        flush=True,
    )

    def measure(domain: str, J: int, hidden: tuple[int, ...], cfgs, reg_only=()) -> dict[tuple, Row]:
        """Time ``cfgs`` on the plain and regularised networks, ``reg_only`` on the regularised one."""
        out = {}
        for reg in (False, True):
            eng = trained(domain, J, hidden, reg, samples, epochs, args.retrain)
            states = roll_out_states(eng, n_states)
            label = f"{domain} J={J} {'x'.join(map(str, hidden))} {'reg' if reg else 'plain'}"
            for backend, tightening in [*cfgs, *(reg_only if reg else ())]:
                row = time_decisions(eng, states, backend, tightening, limit, label)
                rows.append(row)
                out[(reg, backend, tightening)] = row
                print(
                    f"  {label:38s} {backend:6s} {tightening:8s} median {1000 * row.median:8.1f} ms "
                    f"(CPU {1000 * row.cpu:7.1f} ms)  "
                    f"certified {100 * row.certified:3.0f}%  unstable {row.unstable:5.1f}",
                    flush=True,
                )
        return out

    for domain in domains:
        res = measure(domain, 20, (16, 32), configs, others)
        base = res[(False, "highs", "interval")]
        best = res[(True, "highs", "lp")]
        speedups.append((domain, base.median / best.median, res[(True, "highs", "interval")].median / best.median))
        plain_eng = trained(domain, 20, (16, 32), False, samples, epochs)
        reg_eng = trained(domain, 20, (16, 32), True, samples, epochs)
        episodes = 2 if quick else 4
        returns.append((domain, policy_return(plain_eng, episodes), policy_return(reg_eng, episodes)))
    if not quick:
        for hidden in [(32,), (32, 32)]:
            measure("capacity", 20, hidden, configs)
        measure("capacity", 100, (16, 32), configs)

    print_rows(rows)
    envelope(rows)
    print("\nSpeed-up of HiGHS + LP tightening + MILP-friendly network, same run, J = 20 (16x32):")
    print("| domain | vs plain network, interval bounds | vs regularised network, interval bounds |")
    print("|---|---:|---:|")
    for domain, vs_plain, vs_reg_interval in speedups:
        print(f"| {domain} | {vs_plain:.1f}x | {vs_reg_interval:.1f}x |")
    print("\nExact-policy return (auto selector), plain vs MILP-friendly network, common random numbers:")
    print("| domain | plain | regularised | change |")
    print("|---|---:|---:|---:|")
    for domain, plain, reg in returns:
        print(f"| {domain} | {plain:.2f} | {reg:.2f} | {100 * (reg - plain) / max(abs(plain), 1e-9):+.1f}% |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
