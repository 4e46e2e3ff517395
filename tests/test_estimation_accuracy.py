"""Issue 17's estimation target, entry by entry: how close pooled Dirichlet estimates come to the truth of the
synthetic 30-arm programme, what the log allows at all (the Bayes posterior given the true Dirichlet parameters
of the arms' rows), and the inverse-variance cluster centres of ``scenarios/estimation/centres.py``."""

from __future__ import annotations

import numpy as np
import pytest

from scenarios.errors import InvalidInputError
from scenarios.estimation import Pooling, estimate_dynamics, simulate_log, synthetic_programme
from scenarios.estimation.centres import leave_one_out_centres
from scenarios.estimation.pooling import pooled_prior

SUPPORTED = 200  # records an arm needs for the target to apply


def _case(seed: int, n_records: int):
    """The programme, the log the bench draws for this seed and size, and its counts."""
    programme = synthetic_programme(seed=seed)
    rng = np.random.default_rng(seed + n_records)
    log = simulate_log(
        programme.transitions, n_records, rng, initial=programme.initial, arm_weights=programme.arm_weights
    )
    return programme, log, log.counts()


def _oracle(programme, counts: np.ndarray) -> np.ndarray:
    """The posterior mean given the true Dirichlet parameters the rows were drawn from."""
    alpha = programme.row_prior + counts
    return alpha / alpha.sum(-1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_no_estimator_meets_the_per_entry_target_at_ten_thousand_records(seed):
    """At 10,000 records the rows of arms with >= 200 records are logged ~20-100 times each; even the Bayes
    posterior that knows the true cluster centres and spread misses 0.05 on some entry, always in such a row."""
    programme, _, counts = _case(seed, 10_000)
    supported = counts.sum(axis=(1, 2, 3)) >= SUPPORTED
    row_error = np.abs(_oracle(programme, counts) - programme.transitions).max(-1)[supported]
    visits = counts.sum(-1)[supported]
    assert row_error.max() > 0.05
    assert visits[row_error > 0.05].max() < 400
    assert np.median(visits) < 100


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rows_logged_often_enough_are_within_005(seed):
    """The target holds on entries with enough data: rows logged >= 800 times (100,000 records; dozens of rows),
    and the few rows logged >= 400 times at 10,000 records."""
    for n_records, enough, at_least in ((100_000, 800, 20), (10_000, 400, 0)):
        programme, log, counts = _case(seed, n_records)
        supported = counts.sum(axis=(1, 2, 3)) >= SUPPORTED
        rows = supported[:, None, None] & (counts.sum(-1) >= enough)
        assert rows.sum() >= at_least
        estimate = estimate_dynamics(log, pooling=Pooling(clusters=programme.clusters)).mean()
        error = np.abs(estimate - programme.transitions).max(-1)
        assert error[rows].max(initial=0.0) <= 0.05


def test_inverse_variance_centres_beat_pooled_counts_on_average():
    """Over 20 programmes at 10,000 records, the default centres have a smaller mean squared error than the
    other arms' pooled counts (the estimator before them), and win on most programmes."""
    before, after = [], []
    for seed in range(20):
        programme, log, _ = _case(seed, 10_000)
        for centre, out in (("counts", before), ("inverse_variance", after)):
            mean = estimate_dynamics(log, pooling=Pooling(clusters=programme.clusters, centre=centre)).mean()
            out.append(float(((mean - programme.transitions) ** 2).mean()))
    before_mse, after_mse = np.asarray(before), np.asarray(after)
    assert after_mse.mean() < 0.99 * before_mse.mean()
    assert (after_mse < before_mse).mean() >= 0.6


def test_leave_one_out_centres_by_hand():
    counts = np.zeros((3, 1, 1, 2))
    counts[0, 0, 0] = [30, 10]  # 40 records
    counts[1, 0, 0] = [2, 8]  # 10 records
    tau = np.full((1, 1, 1), 20.0)
    centre, strength = leave_one_out_centres(counts, np.zeros(3, dtype=np.int64), tau)
    w0, w1 = 40 * 21 / 60, 10 * 21 / 30  # n (tau + 1) / (n + tau)
    expected = (w0 * np.array([0.75, 0.25]) + w1 * np.array([0.2, 0.8])) / (w0 + w1)
    np.testing.assert_allclose(centre[2, 0, 0], expected)  # arm 2 has no records: both others count
    np.testing.assert_allclose(centre[0, 0, 0], [0.2, 0.8])  # arm 0's centre is arm 1's row alone
    np.testing.assert_allclose(strength[2, 0, 0], 1 / (1 / 21 + 1 / (w0 + w1)) - 1)
    np.testing.assert_allclose(strength[0, 0, 0], 1 / (1 / 21 + 1 / w1) - 1)
    assert strength[0, 0, 0] < strength[1, 0, 0] < strength[2, 0, 0] < 20  # fewer others' records, less trust
    lone = np.zeros((2, 1, 1, 2))
    lone[0, 0, 0] = [5, 5]
    centre, strength = leave_one_out_centres(lone, np.array([0, 1]), np.full((2, 1, 1), 20.0))
    assert not centre.any() and not strength.any()  # no cluster-mate with records: no pooling


def test_strength_approaches_tau_as_the_others_records_grow():
    counts = np.zeros((2, 1, 1, 3))
    counts[0, 0, 0] = [4e6, 4e6, 2e6]
    centre, strength = leave_one_out_centres(counts, np.zeros(2, dtype=np.int64), np.full((1, 1, 1), 50.0))
    np.testing.assert_allclose(centre[1, 0, 0], [0.4, 0.4, 0.2])
    np.testing.assert_allclose(strength[1, 0, 0], 51 / 2 - 1, rtol=1e-4)  # one arm is one draw about the centre
    many = np.tile(counts[:1], (401, 1, 1, 1))
    many[400] = 0
    centre, strength = leave_one_out_centres(many, np.zeros(401, dtype=np.int64), np.full((1, 1, 1), 50.0))
    assert 49.8 < strength[400, 0, 0] < 50.0  # 400 arms pin the centre down: nearly the full tau
    prior, tau = pooled_prior(many, Pooling(clusters=np.zeros(401, dtype=np.int64), pool_strength=50.0), 0.5)
    np.testing.assert_allclose(prior[400, 0, 0], 0.5 + strength[400, 0, 0] * centre[400, 0, 0])
    np.testing.assert_allclose(tau, 50.0)


def test_centre_choice_round_trips_and_old_records_keep_pooled_counts():
    pooling = Pooling(clusters=np.array([0, 0, 1]), centre="counts").resolved(3)
    assert Pooling.from_dict(pooling.to_dict()).centre == "counts"
    assert Pooling.from_dict(Pooling(clusters=np.array([0, 1])).to_dict()).centre == "inverse_variance"
    old = {"clusters": [0, 0, 1], "pool_strength": None, "max_pool_strength": 1000.0}  # saved before centres
    assert Pooling.from_dict(old).centre == "counts"
    with pytest.raises(InvalidInputError) as exc:
        Pooling(clusters=np.array([0, 1]), centre="median")
    assert exc.value.field == "pooling.centre"


def test_credible_intervals_bracket_the_mean_and_check_their_level():
    programme, log, _ = _case(0, 3000)
    posterior = estimate_dynamics(log, pooling=Pooling(clusters=programme.clusters))
    lower, upper = posterior.interval(0.9)
    mean = posterior.mean()
    assert lower.shape == mean.shape and ((lower >= 0) & (lower <= mean) & (mean <= upper) & (upper <= 1)).all()
    wide_lower, wide_upper = posterior.interval(0.99)
    assert (wide_lower <= lower).all() and (wide_upper >= upper).all()
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(InvalidInputError) as exc:
            posterior.interval(level)
        assert exc.value.field == "level"


@pytest.mark.parametrize("n_records", [1_000, 10_000])
def test_posterior_intervals_are_calibrated(n_records):
    """95% credible intervals cover 92-97% of the true probabilities over 10 programmes; the pooled-counts
    centre trusted with the full pool strength was overconfident (68% and 81%)."""
    coverage: dict[str, list[float]] = {"counts": [], "inverse_variance": []}
    for seed in range(10):
        programme, log, _ = _case(seed, n_records)
        for centre, out in coverage.items():
            pooling = Pooling(clusters=programme.clusters, centre=centre)
            lower, upper = estimate_dynamics(log, pooling=pooling).interval()
            out.append(float(((programme.transitions >= lower) & (programme.transitions <= upper)).mean()))
    after, before = np.mean(coverage["inverse_variance"]), np.mean(coverage["counts"])
    assert 0.9 <= after <= 0.99
    assert before < after - 0.05
