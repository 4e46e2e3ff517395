import itertools

import numpy as np
import pytest

from bandits.combinatorial import CUCB, TopKOracle, doubly_robust, ips, marginal_ips, snips
from scenarios.errors import InvalidInputError


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def test_estimators_recover_the_target_value_within_their_interval():
    rng = np.random.default_rng(0)
    n_arms, k = 5, 2
    actions = np.array([[int(i in c) for i in range(n_arms)] for c in itertools.combinations(range(n_arms), k)])
    means = rng.uniform(0, 1, n_arms)
    value = actions @ means  # expected reward of each super arm
    p_log = _softmax(rng.normal(size=len(actions)))
    p_tgt = _softmax(3 * value)
    truth = float(p_tgt @ value)
    n = 20_000
    idx = rng.choice(len(actions), size=n, p=p_log)
    arm_r = (rng.uniform(size=(n, n_arms)) < means).astype(float)
    chosen = actions[idx]
    r = (arm_r * chosen).sum(1)
    model = value + 0.3  # a biased reward model: DR must still be unbiased
    estimates = {
        "ips": ips(r, p_log[idx], p_tgt[idx]),
        "snips": snips(r, p_log[idx], p_tgt[idx]),
        "dr": doubly_robust(r, p_log[idx], p_tgt[idx], model[idx], np.full(n, p_tgt @ model)),
        "marginal": marginal_ips(
            arm_r, chosen, np.broadcast_to(p_log @ actions, (n, n_arms)), np.broadcast_to(p_tgt @ actions, (n, n_arms))
        ),
    }
    for name, est in estimates.items():
        lo, hi = est.interval
        assert lo - est.stderr <= truth <= hi + est.stderr, name  # 99.5% interval
        assert est.stderr < 0.05, name


def test_logged_epsilon_greedy_propensities_support_off_policy_evaluation():
    """Log an epsilon-greedy CUCB on top-k (exact propensities), then evaluate a fixed target action."""
    oracle = TopKOracle(4, 2)
    means = np.array([0.2, 0.5, 0.6, 0.9])
    target = np.array([1, 0, 0, 1])
    pol = CUCB(oracle, seed=3, epsilon=0.5)
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(3000):
        sel = pol.select()
        r = (rng.uniform(size=4) < means).astype(float)
        pol.update(sel.action, r)
        rows.append((float(r @ sel.action), sel.propensity, float(np.array_equal(sel.action, target))))
    r, p, hit = (np.array(c) for c in zip(*rows, strict=True))
    est = ips(r, p, hit)
    assert abs(est.value - means @ target) < 3 * est.stderr


def test_propensity_validation():
    with pytest.raises(InvalidInputError):
        ips([1.0, 2.0], [0.0, 0.5], [1.0, 1.0])
    with pytest.raises(InvalidInputError):
        snips([1.0], [0.5, 0.5], [1.0, 1.0])
