"""Off-policy evaluation from logged selections (``Selection.propensity`` / ``Selection.marginals``).

Super-arm level, for any reward: with weights w_i = p_target(a_i) / p_logging(a_i),
    IPS   = mean(w r),   SNIPS = sum(w r) / sum(w),
    DR    = mean(v_hat_target + w (r - q_hat(a_i)))       (v_hat_target: model value of the target policy).
Arm level, for rewards that add up over the chosen arms (semi-bandit feedback): ``marginal_ips`` weights
each chosen arm's reward by p_target(arm chosen) / p_logging(arm chosen), which needs far less overlap.
Each estimate comes with a standard error and a normal 95% interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bandits.validation import as_float_array
from scenarios.errors import InvalidInputError

Z95 = 1.959963984540054


@dataclass
class OffPolicyEstimate:
    value: float
    stderr: float
    n: int
    effective_sample_size: float

    @property
    def interval(self) -> tuple[float, float]:
        return self.value - Z95 * self.stderr, self.value + Z95 * self.stderr


def _weights(logging_propensity: object, target_propensity: object, n: int) -> np.ndarray:
    p_log = as_float_array(logging_propensity, "logging_propensity", (n,))
    p_tgt = as_float_array(target_propensity, "target_propensity", (n,))
    if np.any(p_log <= 0) or np.any(p_log > 1) or np.any(p_tgt < 0) or np.any(p_tgt > 1):
        raise InvalidInputError("logging_propensity", "propensities must lie in (0, 1] (logging) and [0, 1] (target)")
    return p_tgt / p_log


def _estimate(terms: np.ndarray, w: np.ndarray) -> OffPolicyEstimate:
    n = terms.size
    stderr = float(terms.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    ess = float(w.sum() ** 2 / max((w**2).sum(), 1e-300))
    return OffPolicyEstimate(float(terms.mean()), stderr, n, ess)


def ips(rewards: object, logging_propensity: object, target_propensity: object) -> OffPolicyEstimate:
    """Inverse-propensity estimate of the target policy's mean reward per round."""
    r = as_float_array(rewards, "rewards", (None,))
    w = _weights(logging_propensity, target_propensity, r.size)
    return _estimate(w * r, w)


def snips(rewards: object, logging_propensity: object, target_propensity: object) -> OffPolicyEstimate:
    """Self-normalised IPS (stderr by the delta method)."""
    r = as_float_array(rewards, "rewards", (None,))
    w = _weights(logging_propensity, target_propensity, r.size)
    if w.sum() <= 0:
        raise InvalidInputError("target_propensity", "the target policy gives no weight to any logged action")
    value = float((w * r).sum() / w.sum())
    est = _estimate(w * (r - value) / w.mean(), w)
    return OffPolicyEstimate(value, est.stderr, est.n, est.effective_sample_size)


def doubly_robust(
    rewards: object,
    logging_propensity: object,
    target_propensity: object,
    predicted_logged: object,
    predicted_target: object,
) -> OffPolicyEstimate:
    """Doubly-robust estimate: model value of the target policy plus IPS-weighted model residuals."""
    r = as_float_array(rewards, "rewards", (None,))
    w = _weights(logging_propensity, target_propensity, r.size)
    q = as_float_array(predicted_logged, "predicted_logged", (r.size,))
    v = as_float_array(predicted_target, "predicted_target", (r.size,))
    return _estimate(v + w * (r - q), w)


def marginal_ips(
    arm_rewards: object, chosen: object, logging_marginals: object, target_marginals: object
) -> OffPolicyEstimate:
    """Arm-level IPS for additive rewards: arrays (rounds, arms); unchosen arms' rewards are ignored."""
    mask = as_float_array(chosen, "chosen", (None, None)) > 0
    shape = mask.shape
    try:
        raw = np.asarray(arm_rewards, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("arm_rewards", f"cannot be read as numbers ({exc})") from exc
    if raw.shape != shape:
        raise InvalidInputError("arm_rewards", f"expected shape {shape}")
    if not np.all(np.isfinite(raw[mask])):  # a missing reward of a chosen arm is not a zero
        raise InvalidInputError("arm_rewards", "rewards of chosen arms must be finite")
    r = np.where(mask, raw, 0.0)
    p_log = as_float_array(logging_marginals, "logging_marginals", shape)
    p_tgt = as_float_array(target_marginals, "target_marginals", shape)
    if np.any(p_log[mask] <= 0):
        raise InvalidInputError("logging_marginals", "a chosen arm has logging probability 0")
    w = np.where(mask, p_tgt / np.where(mask, p_log, 1.0), 0.0)
    return _estimate((w * r).sum(1), w.sum(1))
