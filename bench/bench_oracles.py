"""Exact argmax through combinatorial oracles vs the general network MILP, on the same states in the same run.

For capacity, scheduling and routing: the stored J = 6 regression checkpoints and a J = 20 engine trained here
for a few episodes (cached under ``--cache``). On ``--states`` states reached by random feasible play, the MIP
selector decides twice per state, interleaved (order alternating): with its oracle path (Q affine at the
state, all neurons interval-stable -> :mod:`solvers.oracles`; otherwise the MILP) and with the MILP alone
(``oracle=False``), both at ``mip_rel_gap = 1e-6``. Printed per row: how many states took the oracle path,
decision time median / p95 of each selector (all states, and the oracle-path states alone), the ratio of the
medians, and the largest relative difference of the two decisions' Q values (must be <= 1e-6).

    python bench/bench_oracles.py                 # about 5 minutes on a shared 2-core machine (training included)
    python bench/bench_oracles.py --quick         # 8 states, J = 6 checkpoints only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import DQNConfig, Engine
from engine.decision import Decision
from engine.sequoia.selectors.mip import MipSelector
from scenarios import make

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "regression" / "fixtures"
DOMAINS = ("capacity", "scheduling", "routing")
GAP = 1e-6


def states_by_play(env, n: int, seed: int) -> list[np.ndarray]:
    """Observations reached by random feasible actions (arm states then time to go)."""
    rng = np.random.default_rng(seed)
    model = env.action_model()
    obs, _ = env.reset(seed=seed)
    out = []
    for _ in range(n):
        out.append(np.asarray(obs).copy())
        obs, _, done, _, _ = env.step(model.sample(rng))
        if done:
            obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    return out


def trained_engine(name: str, episodes: int, warm_epochs: int, cache: Path) -> Engine:
    """A J = 20 engine trained for ``episodes`` episodes (loaded from ``cache`` when already trained)."""
    path = cache / f"{name}_j20_e{episodes}_w{warm_epochs}"
    if (path / "config.json").exists():
        loaded = Engine.load(path)
        assert isinstance(loaded, Engine)
        return loaded
    torch.manual_seed(0)
    env = make(name, n_arms=20, budget=5, seed=0)
    config = DQNConfig(episodes=episodes, warm_start_epochs=warm_epochs, snapshots=1)
    engine = Engine.train(env, config, seed=0, progress=False)
    assert isinstance(engine, Engine)
    engine.save(path)
    return engine


def compare(engine: Engine, states: list[np.ndarray]) -> dict:
    """Both selectors on every state, interleaved; times in ms."""
    fast, milp = MipSelector(mip_rel_gap=GAP), MipSelector(mip_rel_gap=GAP, oracle=False)
    first = engine.state_q(states[0])
    fast.select(first)  # compile both once (not timed)
    milp.select(first)
    t_fast: list[float] = []
    t_milp: list[float] = []
    oracle: list[bool] = []
    diff: list[float] = []
    unproven = 0
    for k, state in enumerate(states):
        q = engine.state_q(state)
        runs: dict[str, Decision] = {}
        ms: dict[str, float] = {}
        for label, sel in (("fast", fast), ("milp", milp)) if k % 2 == 0 else (("milp", milp), ("fast", fast)):
            start = time.perf_counter()
            runs[label] = sel.select(q)
            ms[label] = 1e3 * (time.perf_counter() - start)
        a, b = runs["fast"], runs["milp"]
        t_fast.append(ms["fast"])
        t_milp.append(ms["milp"])
        oracle.append("oracle" in a.reason)
        diff.append(abs(a.value - b.value) / max(abs(b.value), 1e-9))
        unproven += (a.status != "optimal") + (b.status != "optimal")
    return {
        "fast": np.array(t_fast),
        "milp": np.array(t_milp),
        "oracle": np.array(oracle),
        "diff": float(max(diff)),
        "unproven": unproven,
    }


def row(label: str, r: dict) -> str:
    f, m, o = r["fast"], r["milp"], r["oracle"]

    def stats(x: np.ndarray) -> str:
        return f"{np.median(x):8.2f} {np.percentile(x, 95):8.2f}" if x.size else f"{'-':>8} {'-':>8}"

    ratio = np.median(m) / np.median(f)
    on = f"{np.median(m[o]) / np.median(f[o]):7.1f}x" if o.any() else f"{'-':>8}"
    return (
        f"{label:<16} {o.sum():>3}/{o.size:<3} {stats(f)} {stats(m)} {ratio:6.1f}x | {stats(f[o])} {stats(m[o])} "
        f"{on} | {r['diff']:9.1e} {r['unproven']:>3}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--states", type=int, default=30)
    parser.add_argument("--episodes", type=int, default=10, help="training episodes of the J = 20 engines")
    parser.add_argument("--warm-start-epochs", type=int, default=300)
    parser.add_argument("--cache", type=Path, default=ROOT / "runs" / "bench_oracles")
    parser.add_argument("--quick", action="store_true", help="8 states, J = 6 checkpoints only")
    parser.add_argument("--json", type=Path, default=None, help="also write the per-state times here")
    args = parser.parse_args()
    n = 8 if args.quick else args.states
    torch.set_num_threads(1)
    header = (
        f"{'scenario':<16} {'oracle':>7} {'fast ms':>8} {'p95':>8} {'milp ms':>8} {'p95':>8} {'ratio':>7} | "
        f"{'oracle-path states: fast':>17} {'p95':>8} {'milp':>8} {'p95':>8} {'ratio':>8} | {'max rel':>9} {'unp':>3}"
    )
    print(header)
    print("-" * len(header))
    dump = {}
    for name in DOMAINS:
        stored = Engine.load(FIXTURES / f"{name}.pt")
        assert isinstance(stored, Engine)
        cases = [(f"{name} J=6", stored, make(name, seed=3, n_arms=6, budget=2))]
        if not args.quick:
            engine = trained_engine(name, args.episodes, args.warm_start_epochs, args.cache)
            cases.append((f"{name} J=20", engine, make(name, n_arms=20, budget=5, seed=0)))
        for label, engine, env in cases:
            result = compare(engine, states_by_play(env, n, seed=5))
            print(row(label, result), flush=True)
            dump[label] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.items()}
    print(
        "fast = MIP selector with its oracle path; milp = the same selector with oracle=False; times per decision "
        f"(ms, wall, this process); both at mip_rel_gap={GAP}; unp = decisions not proven optimal"
    )
    if args.json is not None:
        args.json.write_text(json.dumps(dump, indent=1))


if __name__ == "__main__":
    main()
