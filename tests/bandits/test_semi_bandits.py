import numpy as np
import pytest

from bandits.combinatorial import (
    CUCB,
    BernoulliSemiBandit,
    CombinatorialThompson,
    ContextualSemiBandit,
    GaussianSemiBandit,
    KnapsackOracle,
    LinearThompson,
    LinUCB,
    MatchingOracle,
    NeuralThompson,
    NeuralUCB,
    TopKOracle,
    load_policy,
)
from bandits.experiments import plot_regret, run_regret
from scenarios.errors import InvalidInputError

MEANS = np.random.default_rng(3).uniform(0.1, 0.9, 12)


@pytest.mark.parametrize(
    "oracle",
    [TopKOracle(12, 3), KnapsackOracle(np.random.default_rng(3).integers(1, 5, 12), 8)],
    ids=["top_k", "knapsack"],
)
def test_cucb_and_thompson_regret_is_sublinear(oracle):
    env = BernoulliSemiBandit(MEANS, oracle)
    res = run_regret(
        env,
        {
            "cucb": lambda s: CUCB(oracle, seed=s),
            "cts": lambda s: CombinatorialThompson(oracle, seed=s, propensity_samples=0),
        },
        rounds=1000,
        seeds=(0, 1),
    )
    for s in res["summary"].values():
        assert s["second_half"] < 0.7 * s["first_half"]
        assert s["loglog_slope"] < 0.8


def test_neural_beats_linear_on_a_nonlinear_reward(tmp_path):
    oracle = TopKOracle(20, 4)
    env = ContextualSemiBandit(oracle, dim=5, reward="quadratic", noise=0.1, seed=0)
    res = run_regret(
        env,
        {
            "lin_ucb": lambda s: LinUCB(oracle, 5, seed=s, propensity_samples=0),
            "neural_ucb": lambda s: NeuralUCB(oracle, 5, scale=0.3, train_every=10, seed=s, propensity_samples=0),
            "neural_ts": lambda s: NeuralThompson(oracle, 5, scale=0.3, train_every=10, seed=s, propensity_samples=0),
        },
        rounds=200,
        seeds=(0,),
    )
    lin = res["summary"]["lin_ucb"]["final"]
    assert res["summary"]["neural_ucb"]["final"] < 0.6 * lin
    assert res["summary"]["neural_ts"]["final"] < 0.6 * lin
    png = plot_regret(res, tmp_path / "regret.png")
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


def _make(kind, oracle):
    return {
        "cucb": lambda: CUCB(oracle, seed=1, epsilon=0.1),
        "cts": lambda: CombinatorialThompson(oracle, seed=1, propensity_samples=8),
        "cts_gauss": lambda: CombinatorialThompson(oracle, likelihood="gaussian", prior=(0.5, 1.0), seed=1),
        "lin_ucb": lambda: LinUCB(oracle, 3, seed=1),
        "lin_ts": lambda: LinearThompson(oracle, 3, seed=1, propensity_samples=4),
        "neural_ucb": lambda: NeuralUCB(oracle, 3, hidden=8, train_steps=3, seed=1, propensity_samples=0),
        "neural_ts": lambda: NeuralThompson(oracle, 3, hidden=8, train_steps=3, n_draws=2, seed=1),
    }[kind]()


KINDS = ["cucb", "cts", "cts_gauss", "lin_ucb", "lin_ts", "neural_ucb", "neural_ts"]


def _contexts(rng, policy):
    return rng.normal(size=(policy.n_arms, 3)) if policy.contextual else None


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_gives_identical_next_selections(kind, tmp_path):
    oracle = MatchingOracle(3, 3, [[i, j] for i in range(3) for j in range(3)])
    pol = _make(kind, oracle)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = _contexts(rng, pol)
        sel = pol.select(x)
        pol.update(sel.action, rng.uniform(size=pol.n_arms), x)
    pol.save(tmp_path / "state")
    assert (tmp_path / "state" / "state.json").exists() and (tmp_path / "state" / "arrays.npz").exists()
    twin = load_policy(tmp_path / "state")
    assert type(twin) is type(pol)
    for _ in range(4):
        x = _contexts(rng, pol)
        a, b = pol.select(x), twin.select(x)
        assert np.array_equal(a.action, b.action) and np.array_equal(a.scores, b.scores)
        assert a.propensity == b.propensity or (np.isnan(a.propensity) and np.isnan(b.propensity))
        r = rng.uniform(size=pol.n_arms)
        pol.update(a.action, r, x)
        twin.update(b.action, r, x)


@pytest.mark.parametrize("kind", ["cucb", "cts_gauss", "lin_ucb"])
def test_batch_update_equals_incremental(kind):
    oracle = TopKOracle(6, 2)
    one, many = _make(kind, oracle), _make(kind, oracle)
    rng = np.random.default_rng(2)
    acts = np.array([oracle.solve(rng.normal(size=6)).action for _ in range(7)])
    rewards = np.where(acts > 0, rng.uniform(size=(7, 6)), np.nan)
    ctx = rng.normal(size=(7, 6, 3)) if one.contextual else None
    for t in range(7):
        one.update(acts[t], rewards[t], None if ctx is None else ctx[t])
    many.update(acts, rewards, ctx)
    x = _contexts(np.random.default_rng(5), one)
    assert np.allclose(one.select(x).scores, many.select(x).scores)


def test_propensities_are_logged():
    oracle = TopKOracle(5, 2)
    greedy = CUCB(oracle, seed=0).select()
    assert greedy.propensity == 1.0 and np.array_equal(greedy.marginals, greedy.action)
    mixed = CUCB(oracle, seed=0, epsilon=0.2)
    mixed.update(
        np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [1, 0, 0, 0, 1]]),
        np.array([[1.0, 1.0, 0, 0, 0], [0, 0, 0.1, 0.1, 0], [1.0, 0, 0, 0, 0.2]]),
    )
    sel = mixed.select()
    assert sel.marginals.sum() == pytest.approx(2.0)  # (1 - eps) * greedy + eps * k / n per arm
    greedy = np.array_equal(sel.action, [1, 1, 0, 0, 0])  # arms 0 and 1 have the best optimistic means
    assert sel.propensity == pytest.approx(0.8 * greedy + 0.2 / 10)
    ts = CombinatorialThompson(oracle, seed=0, propensity_samples=16).select()
    assert 1 / 17 <= ts.propensity <= 1.0 and ts.params["propensity_samples"] == 16
    assert "alpha" in ts.params and ts.to_dict()["action"] == ts.action.tolist()


def test_environments_and_validation():
    oracle = TopKOracle(4, 2)
    rng = np.random.default_rng(0)
    _, mu, r = GaussianSemiBandit([0.1, 0.2, 0.3, 0.4], oracle, sigma=0.1).draw(rng)
    assert mu.shape == r.shape == (4,)
    pol = CUCB(oracle, seed=0)
    with pytest.raises(InvalidInputError):
        pol.update([1, 1, 0], [1, 1, 0])
    with pytest.raises(InvalidInputError):
        pol.update([1, 1, 0, 0], [1, np.nan, 0, 0])
    with pytest.raises(InvalidInputError):
        pol.select(np.zeros((4, 2)))
    with pytest.raises(InvalidInputError):
        LinUCB(oracle, 2, seed=0).select()
    with pytest.raises(InvalidInputError):
        CombinatorialThompson(oracle, seed=0).update([1, 1, 0, 0], [2.0, 0, 0, 0])
    with pytest.raises(InvalidInputError):
        CUCB(oracle, seed=None)
