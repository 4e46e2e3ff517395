"""Estimating restless-arm dynamics from logs: accuracy and time on the synthetic 30-arm programme.

    python bench/bench_estimation.py [--seed 0] [--within-cluster 200]

For 1,000 / 10,000 / 100,000 logged records: on arms with >= 200 records, the largest absolute error of a
transition probability and the worst arm's mean absolute error; on sparse arms (< 50 records), the mean
absolute error with and without pooling by the true clusters; and the time to count and estimate. Then the
time to load and count a 10^6-record CSV and Parquet log. Runs on one core; seeds are fixed.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenarios.estimation import (  # noqa: E402
    Pooling,
    estimate_dynamics,
    load_transition_log,
    simulate_log,
    synthetic_programme,
)

SIZES = (1_000, 10_000, 100_000)
SUPPORTED, SPARSE = 200, 50


def _timed(fn, repeats: int = 5) -> tuple[object, float]:
    """Result and median seconds of ``fn()``."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def _fmt(values: np.ndarray, reduce) -> str:
    return f"{reduce(values):.3f}" if values.size else "  -  "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--within-cluster", type=float, default=200.0, help="arms' similarity within a cluster")
    args = parser.parse_args()
    programme = synthetic_programme(seed=args.seed, within_cluster=args.within_cluster)
    truth = programme.transitions
    n_arms = len(truth)
    print(
        f"30-arm programme (3 states, 2 actions, 3 clusters, within_cluster={args.within_cluster:g}, seed {args.seed})"
    )
    print(
        f"{'records':>8} {'arms>=200':>9} | {'max err':>15} {'worst arm mean':>15} | {'arms<50':>7} "
        f"{'sparse mean err':>15} | {'tau (clusters)':>18} | {'time':>7}"
    )
    print(f"{'':>8} {'':>9} | {'pooled  unpool':>15} {'pooled  unpool':>15} | {'':>7} {'pooled  unpool':>15} |")
    for n in SIZES:
        log = simulate_log(
            truth, n, np.random.default_rng(args.seed + n), initial=programme.initial, arm_weights=programme.arm_weights
        )
        pooling = Pooling(clusters=programme.clusters)
        pooled, seconds = _timed(lambda log=log, pooling=pooling: estimate_dynamics(log, pooling=pooling))
        unpooled = estimate_dynamics(log)
        records = pooled.record_counts()
        supported, sparse = records >= SUPPORTED, records < SPARSE
        err = {k: np.abs(p.mean() - truth).reshape(n_arms, -1) for k, p in (("p", pooled), ("u", unpooled))}
        cells = [
            f"{n:>8,} {int(supported.sum()):>9} |",
            f"{_fmt(err['p'][supported], np.max):>7} {_fmt(err['u'][supported], np.max):>7}",
            f"{_fmt(err['p'][supported].mean(1), np.max):>7} {_fmt(err['u'][supported].mean(1), np.max):>7} |",
            f"{int(sparse.sum()):>7} {_fmt(err['p'][sparse], np.mean):>7} {_fmt(err['u'][sparse], np.mean):>7} |",
            f"{' '.join(f'{t:5.0f}' for t in pooled.pool_strengths[:, 0, 0]):>18} |",
            f"{seconds * 1e3:6.2f}ms",
        ]
        print(" ".join(cells))
    n = 1_000_000
    big = simulate_log(truth, n, np.random.default_rng(1), initial=programme.initial, arm_weights=programme.arm_weights)
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".csv", ".parquet"):
            path = Path(folder) / f"log{suffix}"
            big.to_file(path)
            loaded, load_s = _timed(lambda path=path: load_transition_log(path), repeats=3)
            _, count_s = _timed(loaded.counts, repeats=3)
            print(f"{n:,} records {suffix:<8}: load + validate {load_s:.3f}s, counts {count_s * 1e3:.1f}ms")


if __name__ == "__main__":
    main()
