"""Estimating restless-arm dynamics from logs: accuracy, where the error sits, planning on the estimate, time.

    python bench/bench_estimation.py [--seeds 0 1 2 3] [--within-cluster 200] [--episodes 50]

On the synthetic 30-arm programme (3 states, 2 actions, 3 clusters; seeds fixed, one core), three estimators
of the transition probabilities side by side: "before" (pooling by the true clusters towards the other arms'
pooled counts, ``Pooling(centre="counts")``), "after" (the default: inverse-variance-weighted centres whose
own uncertainty lowers the pool strength, ``centres.py``) and "oracle" (the Bayes posterior mean given the
true Dirichlet parameters the arms' rows were drawn from: no estimator beats it on average, so its error is
what the log's records allow).

1. Issue 17's target, per entry: the largest |P - P_true| on arms with >= 200 records, for 1,000 / 10,000 /
   100,000 records and each seed; also the worst arm's mean absolute error, the sparse arms' (< 50 records),
   and the share of all arms' true probabilities inside their 95% credible intervals (the posterior's calibration).
2. Where the error sits: the worst entry by how often its (arm, action, state) row was logged, summed over
   seeds, for 10,000 and 100,000 records; and the visits per row under the logging policy.
3. Planning on the estimate (budget 6, 10,000 records): the best planner fitted on each estimate, evaluated on
   the TRUE model with the same episodes as the planners fitted on the truth (paired); target >= 95%.
4. The time to load and count a 10^6-record CSV and Parquet log.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import itertools  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scenarios.estimation import (  # noqa: E402
    Pooling,
    SyntheticProgramme,
    TransitionLog,
    estimate_dynamics,
    load_transition_log,
    simulate_log,
    synthetic_programme,
)

SIZES = (1_000, 10_000, 100_000)
SUPPORTED, SPARSE, TARGET = 200, 50, 0.05
VISIT_BINS = (0, 50, 100, 200, 400, 800, None)
ESTIMATORS = ("before", "after", "oracle")
CENTRES = ("counts", "inverse_variance")  # Pooling(centre=...) of "before" and "after"


def _log(programme: SyntheticProgramme, n: int, seed: int) -> TransitionLog:
    rng = np.random.default_rng(seed + n)  # the log the planning bench and the tests draw for this seed
    return simulate_log(programme.transitions, n, rng, initial=programme.initial, arm_weights=programme.arm_weights)


def estimates(programme: SyntheticProgramme, log: TransitionLog) -> dict[str, np.ndarray]:
    """Posterior mean transitions of each estimator (module docstring), plus the unpooled one."""
    counts = log.counts()
    alpha = programme.row_prior + counts
    clusters = programme.clusters
    return {
        "before": estimate_dynamics(log, pooling=Pooling(clusters=clusters, centre="counts")).mean(),
        "after": estimate_dynamics(log, pooling=Pooling(clusters=clusters)).mean(),
        "oracle": alpha / alpha.sum(-1, keepdims=True),
        "unpooled": estimate_dynamics(log).mean(),
    }


def _fmt(values: np.ndarray, reduce) -> str:
    return f"{reduce(values):.3f}" if values.size else "  -  "


def accuracy(programmes: dict[int, SyntheticProgramme]) -> None:
    print(f"\n1. Largest |P - P_true| on arms with >= {SUPPORTED} records (issue 17: <= {TARGET}), per seed")
    print(
        f"{'records':>8} {'seed':>4} {'arms':>4} | {'max |P - P_true|':^31} | {'worst arm mean':^13} | "
        f"{'arms<50 mean err':^17} | {'95% cover, all':^15} | {'ms':>5}"
    )
    print(f"{'':>8} {'':>4} {'':>4} | {'before  after oracle unpooled':>31} | {'before after':>13} | "
          f"{'n before  after':>17} | {'before after':>15} |")  # fmt: skip
    for n in SIZES:
        for seed, programme in programmes.items():
            log = _log(programme, n, seed)
            start = time.perf_counter()
            estimate_dynamics(log, pooling=Pooling(clusters=programme.clusters))
            ms = (time.perf_counter() - start) * 1e3
            records = log.counts().sum(axis=(1, 2, 3))
            supported, sparse = records >= SUPPORTED, records < SPARSE
            err = {
                k: np.abs(v - programme.transitions).reshape(len(records), -1)
                for k, v in estimates(programme, log).items()
            }
            worst = " ".join(f"{_fmt(err[k][supported], np.max):>6}" for k in (*ESTIMATORS, "unpooled"))
            arm_mean = " ".join(f"{_fmt(err[k][supported].mean(1), np.max):>6}" for k in ("before", "after"))
            sparse_err = " ".join(f"{_fmt(err[k][sparse], np.mean):>6}" for k in ("before", "after"))
            cover = " ".join(f"{_fmt(_covered(programme, log, c), np.mean):>6}" for c in CENTRES)
            print(f"{n:>8,} {seed:>4} {int(supported.sum()):>4} | {worst:>31} | {arm_mean:>13} | "
                  f"{int(sparse.sum()):>3} {sparse_err} | {cover:>15} | {ms:5.2f}")  # fmt: skip


def _covered(programme: SyntheticProgramme, log: TransitionLog, centre: str) -> np.ndarray:
    """(arms, entries): whether each true probability lies in its 95% credible interval."""
    lower, upper = estimate_dynamics(log, pooling=Pooling(clusters=programme.clusters, centre=centre)).interval()
    truth = programme.transitions
    return ((truth >= lower) & (truth <= upper)).reshape(len(truth), -1)


def where_the_error_sits(programmes: dict[int, SyntheticProgramme]) -> None:
    print(f"\n2. Worst |P - P_true| by the visits of its (arm, action, state) row, arms with >= {SUPPORTED} records,")
    print(f"   all seeds together; 'rows > {TARGET}': rows with an entry off by more than {TARGET}")
    for n in SIZES[1:]:
        print(f"  {n:,} records: {'row visits':>10} {'rows':>5} | {'worst: before  after oracle':>27} | "
              f"{'rows > 0.05: before after oracle':>32}")  # fmt: skip
        rows: dict[str, list[np.ndarray]] = {k: [] for k in ESTIMATORS}
        visits: list[np.ndarray] = []
        for seed, programme in programmes.items():
            log = _log(programme, n, seed)
            counts = log.counts()
            supported = counts.sum(axis=(1, 2, 3)) >= SUPPORTED
            visits.append(counts.sum(-1)[supported].ravel())
            for k, v in estimates(programme, log).items():
                if k in rows:
                    rows[k].append(np.abs(v - programme.transitions).max(-1)[supported].ravel())
        seen = np.concatenate(visits)
        worst = {k: np.concatenate(v) for k, v in rows.items()}
        for lo, hi in itertools.pairwise(VISIT_BINS):
            sel = (seen >= lo) & (seen < (np.inf if hi is None else hi))
            label = f"{lo}-{hi - 1}" if hi is not None else f">= {lo}"
            top = " ".join(f"{_fmt(worst[k][sel], np.max):>6}" for k in ESTIMATORS)
            over = " ".join(f"{int((worst[k][sel] > TARGET).sum()):>6}" for k in ESTIMATORS)
            print(f"  {'':>{len(f'{n:,} records:')}} {label:>10} {int(sel.sum()):>5} | {top:>27} | {over:>32}")
    seed, programme = next(iter(programmes.items()))
    counts = _log(programme, SIZES[1], seed).counts()
    supported = counts.sum(axis=(1, 2, 3)) >= SUPPORTED
    per_row = counts.sum(-1)[supported]  # (arms, actions, states)
    print(f"  visits per row at {SIZES[1]:,} records, seed {seed}, {int(supported.sum())} arms with >= {SUPPORTED} "
          "records (min / median / max over the arms):")  # fmt: skip
    for a in range(per_row.shape[1]):
        cells = "  ".join(
            f"state {s}: {int(per_row[:, a, s].min()):>3} / {int(np.median(per_row[:, a, s])):>3} / "
            f"{int(per_row[:, a, s].max()):>4}"
            for s in range(per_row.shape[2])
        )
        print(f"    action {a}: {cells}")


def planning(programmes: dict[int, SyntheticProgramme], episodes: int) -> None:
    from bench_estimated_planning import HORIZON, PLANNERS, REWARDS, domains, mean_return, policies

    from engine.analysis.evaluation import evaluate
    from scenarios import load_instance
    from scenarios.estimation.to_arms import PosteriorArms

    n = SIZES[1]
    print(f"\n3. Planning on the estimate, budget 6, {n:,} records: best planner on its own model, evaluated on the "
          f"TRUE model ({episodes} paired episodes); target >= 95%")  # fmt: skip
    print(f"  {'seed':>4} {'true':>8} | {'before':>15} {'after':>15} {'oracle':>15}")
    for seed, programme in programmes.items():
        known = {"arrival_rewards": list(REWARDS), "initial": programme.initial, "horizon": HORIZON}
        bridge = PosteriorArms(estimate_dynamics(np.zeros_like(programme.transitions)), **known)
        scenario, data = domains(bridge.arms(programme.transitions), seed)[f"budget {6}"]
        true_instance = load_instance(scenario, data)
        episode_seeds = [seed * 1_000_003 + e for e in range(episodes)]
        true_run = evaluate(true_instance, policies(scenario, true_instance, "true"), episode_seeds=episode_seeds,
                            progress=False)  # fmt: skip
        true_best = max(mean_return(true_run, f"{p} (true)") for p in PLANNERS)
        cells = []
        for name, P in estimates(programme, _log(programme, n, seed)).items():
            if name not in ESTIMATORS:
                continue
            est_instance = load_instance(scenario, domains(bridge.arms(P), seed)[f"budget {6}"][1])
            est_policies = policies(scenario, est_instance, "est")
            own = evaluate(est_instance, est_policies, episode_seeds=episode_seeds[:20], progress=False)
            pick = max(est_policies, key=lambda p, own=own: mean_return(own, p))
            run = evaluate(true_instance, {pick: est_policies[pick]}, episode_seeds=episode_seeds, progress=False)
            value = mean_return(run, pick)
            cells.append(f"{value:7.2f} {100 * value / true_best:6.1f}%")
        print(f"  {seed:>4} {true_best:8.2f} | " + " ".join(f"{c:>15}" for c in cells))


def loading() -> None:
    print()
    n = 1_000_000
    programme = synthetic_programme()
    big = simulate_log(programme.transitions, n, np.random.default_rng(1), initial=programme.initial,
                       arm_weights=programme.arm_weights)  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for suffix in (".csv", ".parquet"):
            path = Path(folder) / f"log{suffix}"
            big.to_file(path)
            times = []
            for _ in range(3):
                start = time.perf_counter()
                loaded = load_transition_log(path)
                times.append(time.perf_counter() - start)
            start = time.perf_counter()
            loaded.counts()
            count_ms = (time.perf_counter() - start) * 1e3
            print(f"4. {n:,} records {suffix:<8}: load + validate {np.median(times):.3f}s, counts {count_ms:.1f}ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--within-cluster", type=float, default=200.0, help="arms' similarity within a cluster")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes of the planning section")
    args = parser.parse_args()
    programmes = {s: synthetic_programme(seed=s, within_cluster=args.within_cluster) for s in args.seeds}
    print(f"30-arm programme (3 states, 2 actions, 3 clusters, within_cluster={args.within_cluster:g}), "
          f"seeds {args.seeds}")  # fmt: skip
    accuracy(programmes)
    where_the_error_sits(programmes)
    planning(programmes, args.episodes)
    loading()


if __name__ == "__main__":
    main()
