"""Issue 17, item 4: restless-arm dynamics estimated from logged transitions (logs, Dirichlet posteriors,
pooling across similar arms, updates, JSON round trip) on a synthetic clustered programme."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.errors import InvalidInputError
from scenarios.estimation import (
    DynamicsPosterior,
    Pooling,
    TransitionLog,
    estimate_dynamics,
    kmeans,
    load_transition_log,
    simulate_log,
    synthetic_programme,
)
from scenarios.estimation.cluster_count import best_cluster_count

PROGRAMME = synthetic_programme(n_arms=30, n_states=3, n_actions=2, n_clusters=3, seed=0)


def _log(n_records: int, seed: int, programme=PROGRAMME) -> TransitionLog:
    rng = np.random.default_rng(seed)
    return simulate_log(
        programme.transitions, n_records, rng, initial=programme.initial, arm_weights=programme.arm_weights
    )


def _frame(rows: int = 40, seed: int = 0) -> pd.DataFrame:
    return _log(rows, seed).to_frame()


@st.composite
def logs(draw) -> TransitionLog:
    N, A, S = draw(st.integers(1, 5)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    n = draw(st.integers(0, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cols = [rng.integers(0, N, n), rng.integers(0, S, n), rng.integers(0, A, n), rng.integers(0, S, n)]
    return TransitionLog(*cols, N, S, A)


@settings(max_examples=60, deadline=None)
@given(logs())
def test_counts_equal_a_naive_loop(log):
    naive = np.zeros((log.n_arms, log.n_actions, log.n_states, log.n_states), dtype=np.int64)
    for i, s, a, t in zip(log.arm, log.state, log.action, log.next_state, strict=True):
        naive[i, a, s, t] += 1
    np.testing.assert_array_equal(log.counts(), naive)


@settings(max_examples=40, deadline=None)
@given(logs(), st.sampled_from(["none", "clusters", "features", "fixed"]), st.floats(0.05, 5.0))
def test_mean_rows_are_distributions(log, mode, prior_strength):
    N = log.n_arms
    pooling = {
        "none": None,
        "clusters": Pooling(clusters=np.arange(N) % 2),
        "features": Pooling(features=np.arange(2 * N, dtype=float).reshape(N, 2) % 3, n_clusters=min(2, N)),
        "fixed": Pooling(clusters=np.zeros(N, dtype=int), pool_strength=7.0),
    }[mode]
    posterior = estimate_dynamics(log, prior_strength=prior_strength, pooling=pooling)
    mean = posterior.mean()
    assert mean.shape == (N, log.n_actions, log.n_states, log.n_states)
    assert (mean > 0).all()
    np.testing.assert_allclose(mean.sum(-1), 1.0, atol=1e-12)
    draws = posterior.sample(np.random.default_rng(0), n=3)
    assert draws.shape == (3, *mean.shape) and (draws >= 0).all()
    np.testing.assert_allclose(draws.sum(-1), 1.0, atol=1e-9)


def test_samples_average_to_the_mean():
    posterior = estimate_dynamics(_log(3000, 1), pooling=Pooling(clusters=PROGRAMME.clusters))
    draws = posterior.sample(np.random.default_rng(3), n=4000)
    np.testing.assert_allclose(draws.mean(0), posterior.mean(), atol=0.02)
    assert posterior.sample(np.random.default_rng(3)).shape == posterior.mean().shape


@pytest.mark.parametrize(
    ("column", "value", "n_states", "reason"),
    [
        ("next_state", "x", None, "expected a non-negative integer, got 'x'"),
        ("next_state", "7", 3, "expected an integer in [0, 2], got 7"),
        ("state", "-1", None, "got -1"),
        ("action", "1.5", None, "got 1.5"),
        ("arm", "", None, "got an empty value"),
    ],
)
def test_bad_csv_rows_name_row_and_column(tmp_path: Path, column, value, n_states, reason):
    frame = _frame().astype(str)
    frame.loc[16, column] = value  # the 17th record, line 18 of the file
    frame.loc[30, "state"] = "y"  # a later bad row is not the one reported
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InvalidInputError) as exc:
        load_transition_log(path, n_states=n_states)
    assert exc.value.field == f"log row 17, column {column!r}"
    assert reason in exc.value.reason


def test_bad_frame_values_and_dimensions(tmp_path: Path):
    frame = _frame()
    frame.loc[4, "action"] = 2
    with pytest.raises(InvalidInputError) as exc:
        load_transition_log(frame, n_actions=2)
    assert exc.value.field == "log row 5, column 'action'" and "[0, 1], got 2" in exc.value.reason
    assert load_transition_log(frame).n_actions == 3
    with pytest.raises(InvalidInputError, match=r"column 'arm'.*\[0, 1\]"):
        load_transition_log(_frame(), n_arms=2)
    with pytest.raises(InvalidInputError) as exc:
        load_transition_log(frame.assign(state=True))
    assert exc.value.field == "log row 1, column 'state'" and "got True" in exc.value.reason


def test_missing_columns_and_bad_files_are_named(tmp_path: Path):
    path = tmp_path / "log.csv"
    _frame().drop(columns=["action", "next_state"]).to_csv(path, index=False)
    with pytest.raises(InvalidInputError) as exc:
        load_transition_log(path)
    assert exc.value.field == "log column 'action', 'next_state'" and "'arm'" in exc.value.reason
    with pytest.raises(InvalidInputError, match="unsupported file type"):
        load_transition_log(tmp_path / "log.txt")
    with pytest.raises(InvalidInputError, match="no such file"):
        load_transition_log(tmp_path / "absent.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InvalidInputError, match="empty"):
        load_transition_log(tmp_path / "empty.csv")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_transition_log(tmp_path / "broken.parquet")
    with pytest.raises(InvalidInputError, match="no records"):
        load_transition_log(_frame().iloc[:0])
    assert len(load_transition_log(_frame().iloc[:0], n_states=3, n_actions=2, n_arms=4)) == 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet_round_trip(tmp_path: Path, suffix):
    log = _log(500, 2)
    path = tmp_path / f"log{suffix}"
    frame = log.to_frame().assign(note="extra column", weight=1.5)  # extra columns are ignored
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    loaded = load_transition_log(path, n_states=3, n_actions=2, n_arms=30)
    for name in ("arm", "state", "action", "next_state"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(log, name))
    np.testing.assert_array_equal(loaded.counts(), log.counts())
    log.to_file(tmp_path / f"again{suffix}")
    np.testing.assert_array_equal(load_transition_log(tmp_path / f"again{suffix}").counts(), log.counts())


def _errors(posterior: DynamicsPosterior) -> np.ndarray:
    """Mean absolute error of each arm's transition probabilities."""
    return np.abs(posterior.mean() - PROGRAMME.transitions).reshape(len(PROGRAMME.clusters), -1).mean(1)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooling_helps_sparse_arms(seed):
    log = _log(2000, seed)
    records = log.counts().sum(axis=(1, 2, 3))
    sparse = records < 40
    assert sparse.sum() >= 5 and records[sparse].min() < 20
    unpooled = _errors(estimate_dynamics(log))
    by_cluster = _errors(estimate_dynamics(log, pooling=Pooling(clusters=PROGRAMME.clusters)))
    by_features = _errors(estimate_dynamics(log, pooling=Pooling(features=PROGRAMME.features, n_clusters=3)))
    assert by_cluster[sparse].mean() < 0.6 * unpooled[sparse].mean()
    assert by_features[sparse].mean() < 0.6 * unpooled[sparse].mean()
    assert by_cluster.mean() < unpooled.mean()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ten_thousand_records_estimate_well_supported_arms_within_005(seed):
    """The issue's target, read as each arm's mean absolute error over its transition probabilities; the
    largest single-entry error is larger (about 0.1 in rows visited 20-100 times, out of reach of any estimator:
    see test_estimation_accuracy.py)."""
    log = _log(10_000, seed)
    posterior = estimate_dynamics(log, pooling=Pooling(clusters=PROGRAMME.clusters))
    supported = posterior.record_counts() >= 200
    assert supported.sum() >= 12
    assert _errors(posterior)[supported].max() <= 0.05


def test_kmeans_recovers_the_clusters_deterministically():
    labels = kmeans(PROGRAMME.features, 3, seed=0)
    assert labels[0] == 0
    np.testing.assert_array_equal(labels, kmeans(PROGRAMME.features, 3, seed=0))
    pairs = set(zip(labels.tolist(), PROGRAMME.clusters.tolist(), strict=True))
    assert len(pairs) == 3  # the same partition up to renaming
    with pytest.raises(InvalidInputError):
        kmeans(PROGRAMME.features, 31)


@pytest.mark.parametrize("pooling", [None, Pooling(clusters=PROGRAMME.clusters), Pooling(features=PROGRAMME.features)])
def test_update_equals_estimating_on_the_concatenated_log(pooling):
    first, second = _log(1500, 5), _log(700, 6)
    updated = estimate_dynamics(first, pooling=pooling).update(second)
    direct = estimate_dynamics(first.concat(second), pooling=pooling)
    np.testing.assert_allclose(updated.alpha, direct.alpha, rtol=1e-12)
    np.testing.assert_array_equal(updated.record_counts(), direct.record_counts())
    small = load_transition_log(second.to_frame().query("arm < 10"))  # infers 10 arms; padded on update
    assert small.n_arms == 10
    assert estimate_dynamics(first).update(small).record_counts().sum() == len(first) + len(small)
    with pytest.raises(InvalidInputError):
        estimate_dynamics(first).update(np.zeros((2, 2, 3, 3)))


def test_unvisited_rows_fall_back_to_the_cluster_then_uniform():
    counts = np.zeros((4, 1, 2, 2))
    counts[0, 0, 0] = [90, 10]  # arm 0 and 1 share cluster 0; only arm 0 has records
    pooled = estimate_dynamics(counts, pooling=Pooling(clusters=np.array([0, 0, 1, 1]), pool_strength=50.0))
    mean = pooled.mean()
    assert mean[1, 0, 0, 0] > 0.85  # arm 1 borrows arm 0's row
    np.testing.assert_allclose(mean[1, 0, 1], [0.5, 0.5])  # no arm of the cluster visited state 1
    np.testing.assert_allclose(mean[2:], 0.5)  # cluster 1 has no records at all
    np.testing.assert_allclose(estimate_dynamics(counts).mean()[1], 0.5)


def test_json_round_trip():
    posterior = estimate_dynamics(_log(800, 7), prior_strength=0.5, pooling=Pooling(features=PROGRAMME.features))
    restored = DynamicsPosterior.from_dict(json.loads(json.dumps(posterior.to_dict())))
    np.testing.assert_array_equal(restored.alpha, posterior.alpha)
    np.testing.assert_array_equal(restored.pool_strengths, posterior.pool_strengths)
    np.testing.assert_array_equal(restored.pooling.clusters, posterior.pooling.clusters)
    more = _log(300, 8)
    np.testing.assert_allclose(restored.update(more).alpha, posterior.update(more).alpha, rtol=1e-12)
    plain = estimate_dynamics(_log(100, 9))
    np.testing.assert_array_equal(
        DynamicsPosterior.from_dict(json.loads(json.dumps(plain.to_dict()))).alpha, plain.alpha
    )
    with pytest.raises(InvalidInputError) as exc:
        DynamicsPosterior.from_dict({**plain.to_dict(), "counts": [[1]]})
    assert exc.value.field == "posterior.counts"


def test_invalid_estimation_settings_are_named():
    counts = _log(100, 0).counts()
    with pytest.raises(InvalidInputError) as exc:
        estimate_dynamics(counts, prior_strength=0.0)
    assert exc.value.field == "prior_strength"
    with pytest.raises(InvalidInputError) as exc:
        estimate_dynamics(counts, pooling=Pooling(clusters=np.zeros(3, dtype=int)))
    assert exc.value.field == "clusters"
    with pytest.raises(InvalidInputError):
        Pooling()
    with pytest.raises(InvalidInputError):
        estimate_dynamics(-counts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_number_of_clusters_is_chosen_from_the_records(seed):
    log = _log(10_000, seed)
    counts = log.counts().astype(float)
    chosen = Pooling(features=PROGRAMME.features, n_clusters=None).resolved(30, counts)
    assert chosen.n_clusters == 3  # the programme's clusters, found from the features and the records
    pairs = set(zip(chosen.clusters.tolist(), PROGRAMME.clusters.tolist(), strict=True))
    assert len(pairs) == 3
    posterior = estimate_dynamics(log, pooling=Pooling(features=PROGRAMME.features, n_clusters=None))
    np.testing.assert_array_equal(posterior.pooling.clusters, chosen.clusters)
    one = estimate_dynamics(log, pooling=Pooling(features=PROGRAMME.features, n_clusters=1))
    assert _errors(posterior).mean() < _errors(one).mean()
    _, scores = best_cluster_count(
        PROGRAMME.features, lambda labels: float(-((labels - labels.mean()) ** 2).sum()), max_clusters=4
    )
    assert list(scores) == [1, 2, 3, 4] and max(scores, key=scores.get) == 1  # the smallest k wins ties


def test_bad_cluster_counts_are_named():
    with pytest.raises(InvalidInputError) as exc:
        Pooling(features=PROGRAMME.features, n_clusters=0)
    assert exc.value.field == "n_clusters"
    with pytest.raises(InvalidInputError) as exc:
        Pooling(features=PROGRAMME.features, n_clusters=None).resolved(30)
    assert exc.value.field == "n_clusters"
