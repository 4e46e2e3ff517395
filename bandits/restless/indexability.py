"""Exact indexability check of candidate Whittle indices.

An arm is indexable with indices w when, for every charge ``lam``, the threshold policy "take the highest
level k with w(s, k) > lam" is optimal (and w is non-increasing in k). For a fixed policy every value is an
affine function of ``lam``, so the set of charges where that policy is optimal is an interval: it suffices
to check each threshold policy at the two ends of its interval between consecutive sorted indices (and the
sign of the slope on the two unbounded intervals). Everything is vectorised over arms and intervals.
"""

from __future__ import annotations

import numpy as np

from bandits.restless.arms import RestlessArms
from bandits.restless.planning import evaluate_policy, q_values


def check_indexability(
    arms: RestlessArms | tuple, indices: np.ndarray, discount: float, horizon: int | None, tol: float = 1e-7
) -> np.ndarray:
    """Boolean (arms,): whether each arm is indexable with the given (raw) indices."""
    P, R, C, *_ = arms if isinstance(arms, tuple) else arms.arrays()
    N, _, S, _ = P.shape
    w = np.asarray(indices, dtype=float)
    ok = ~np.isnan(w).reshape(N, -1).any(1)
    ok &= np.all(np.diff(np.nan_to_num(w), axis=-1) <= tol * (1 + np.abs(w[..., 1:])), axis=tuple(range(1, w.ndim)))
    flat = np.nan_to_num(w).reshape(N, -1)  # (N, L), L = [H *] S * K
    L = flat.shape[1]
    order = np.argsort(flat, axis=1, kind="stable")
    bps = np.take_along_axis(flat, order, 1)  # sorted breakpoints
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(L)[None, :].repeat(N, 0), 1)
    on = pos[:, None, :] >= np.arange(L + 1)[None, :, None]  # (N, L+1, L): levels on in interval j
    policy = on.reshape(N, L + 1, *w.shape[1:]).sum(-1)  # (N, L+1, [H,] S)
    lower = np.concatenate([np.full((N, 1), -np.inf), bps], 1)  # interval j = [lower_j, upper_j]
    upper = np.concatenate([bps, np.full((N, 1), np.inf)], 1)

    span = R.max(axis=(1, 2)) - R.min(axis=(1, 2)) + 1e-12
    mult = (1.0 / (1.0 - discount)) if horizon is None else float(np.sum(discount ** np.arange(horizon)))
    atol = (tol * (1.0 + span * mult))[:, None].repeat(L + 1, 1).ravel()
    stol = (tol * (1.0 + C.max(1) * mult))[:, None].repeat(L + 1, 1).ravel()
    rep = np.repeat(np.arange(N), L + 1)
    Pm, Rm, Cm = P[rep], R[rep], C[rep]
    lo, hi = lower.ravel(), upper.ravel()
    good = np.ones(N * (L + 1), dtype=bool)

    def check(Qa, Qb, pol):
        # gap(l) = alpha + beta * l must be <= 0 on [lo, hi] for every (s, a)
        va = np.take_along_axis(Qa, pol[..., None], -1)
        vb = np.take_along_axis(Qb, pol[..., None], -1)
        alpha, beta = (Qa - va).reshape(len(lo), -1), (vb - Qb).reshape(len(lo), -1)
        at_lo = np.where(np.isfinite(lo)[:, None], alpha + beta * np.where(np.isfinite(lo), lo, 0.0)[:, None], -np.inf)
        at_hi = np.where(np.isfinite(hi)[:, None], alpha + beta * np.where(np.isfinite(hi), hi, 0.0)[:, None], -np.inf)
        fine = (at_lo <= atol[:, None]).all(1) & (at_hi <= atol[:, None]).all(1)
        fine &= np.where(np.isinf(hi)[:, None], beta <= stol[:, None], True).all(1)
        fine &= np.where(np.isinf(lo)[:, None], beta >= -stol[:, None], True).all(1)
        return fine

    if horizon is None:
        pol = policy.reshape(N * (L + 1), S)
        Va, Vb = evaluate_policy(Pm, Rm, Cm, pol, discount)
        Qa, Qb = q_values(Pm, Rm, Cm, Va, Vb, discount)
        good &= check(Qa, Qb, pol)
    else:
        pol = policy.reshape(N * (L + 1), horizon, S)
        Va = Vb = np.zeros((N * (L + 1), S))
        for h in range(horizon):
            Qa, Qb = q_values(Pm, Rm, Cm, Va, Vb, discount)
            good &= check(Qa, Qb, pol[:, h])
            Va = np.take_along_axis(Qa, pol[:, h, :, None], -1)[..., 0]
            Vb = np.take_along_axis(Qb, pol[:, h, :, None], -1)[..., 0]
    return ok & good.reshape(N, L + 1).all(1)
