"""Exact dynamic programming for a batch of small MDPs with a charge ``lam`` per unit of action cost.

Every value is kept as an affine function of the charge, ``V = Va - lam * Vb`` (Va: reward part, Vb: cost
part), which is exact for a fixed policy. Shapes: P (M, A, S, S), R (M, S, A), C (M, A), lam (M,).
Discounted problems use policy iteration (exact linear solves); finite horizons use backward induction.
"""

from __future__ import annotations

import numpy as np

TIE = 1e-12


def q_values(P, R, C, Va, Vb, discount):
    """Affine parts of Q(s, a) = r(s, a) - lam c(a) + discount * P(s, a) . V."""
    Qa = R + discount * np.einsum("masn,mn->msa", P, Va)
    Qb = C[:, None, :] + discount * np.einsum("masn,mn->msa", P, Vb)
    return Qa, Qb


def evaluate_policy(P, R, C, policy, discount):
    """Exact discounted value of a stationary policy (M, S): returns (Va, Vb), each (M, S)."""
    M, _, S, _ = P.shape
    rows = np.arange(M)[:, None]
    states = np.arange(S)[None, :]
    P_pi = P[rows, policy, states]  # (M, S, S)
    rhs = np.stack([R[rows, states, policy], C[rows, policy]], axis=-1)  # (M, S, 2)
    X = np.linalg.solve(np.eye(S) - discount * P_pi, rhs)
    return X[..., 0], X[..., 1]


def greedy(Qa, Qb, lam, current=None):
    """Argmax of Qa - lam Qb over actions, keeping ``current`` where it is optimal up to ties."""
    Q = Qa - lam[:, None, None] * Qb
    best = Q.argmax(-1)
    if current is None:
        return best
    cur = np.take_along_axis(Q, current[..., None], -1)[..., 0]
    keep = cur >= Q.max(-1) - TIE * (1.0 + np.abs(cur))
    return np.where(keep, current, best)


def solve_discounted(P, R, C, lam, discount, policy=None, max_iter=100):
    """Optimal policy and affine Q of each MDP at its charge, by policy iteration (warm start ``policy``)."""
    if policy is None:
        policy = greedy(R, np.broadcast_to(C[:, None, :], R.shape), lam)
    for _ in range(max_iter):
        Va, Vb = evaluate_policy(P, R, C, policy, discount)
        Qa, Qb = q_values(P, R, C, Va, Vb, discount)
        new = greedy(Qa, Qb, lam, policy)
        if np.array_equal(new, policy):
            break
        policy = new
    return policy, Qa, Qb


def solve_finite(P, R, C, lam, horizon, discount=1.0, record=None):
    """Backward induction to ``horizon`` steps at each MDP's charge.

    Returns Qa, Qb of shape (M, S, A) taken at time-to-go ``record[m]`` (default: ``horizon``) for each
    MDP, with the optimal continuation. MDPs are processed in order of decreasing ``record`` so that work
    stops for each once its time-to-go is reached.
    """
    M, A, S, _ = P.shape
    rec = np.full(M, horizon) if record is None else np.asarray(record)
    order = np.argsort(-rec, kind="stable")
    P, R, C, lam, rec = P[order], R[order], C[order], lam[order], rec[order]
    outa, outb = np.empty((M, S, A)), np.empty((M, S, A))
    Va, Vb = np.zeros((M, S)), np.zeros((M, S))
    for h in range(1, int(rec.max()) + 1):
        n = int(np.searchsorted(-rec, -h, side="right"))  # MDPs still needing step h
        Qa, Qb = q_values(P[:n], R[:n], C[:n], Va[:n], Vb[:n], discount)
        done = rec[:n] == h
        outa[:n][done], outb[:n][done] = Qa[done], Qb[done]
        act = greedy(Qa, Qb, lam[:n])[..., None]
        Va, Vb = np.take_along_axis(Qa, act, -1)[..., 0], np.take_along_axis(Qb, act, -1)[..., 0]
    inv = np.empty(M, dtype=np.int64)
    inv[order] = np.arange(M)
    return outa[inv], outb[inv]


def finite_values(P, R, C, lam, horizon, discount=1.0):
    """Optimal Q for every time-to-go: array (M, H, S, A) (index h-1 for time-to-go h).

    ``lam`` is (M,) or (M, H) (a charge per time-to-go, e.g. per-period Lagrange multipliers).
    """
    M, A, S, _ = P.shape
    lam = np.broadcast_to(np.asarray(lam, dtype=float).reshape(M, -1), (M, horizon))
    Qs = np.empty((M, horizon, S, A))
    V = np.zeros((M, S))
    for h in range(horizon):
        Qs[:, h] = R - lam[:, h, None, None] * C[:, None, :] + discount * np.einsum("masn,mn->msa", P, V)
        V = Qs[:, h].max(-1)
    return Qs
