"""Independent, non-vectorised reference computations for the bandit tests (plain Python loops)."""

from __future__ import annotations

import itertools


def q_table(P, R, C, lam, discount, horizon=None, time_to_go=None, tol=1e-13):
    """Q[s][a] of ONE arm at charge ``lam``: value iteration to ``tol`` (discounted) or backward induction."""
    A, S = len(P), len(P[0])
    V = [0.0] * S
    steps = time_to_go if horizon is not None else 1_000_000
    Q = []
    for _ in range(steps):
        Q = [
            [R[s][a] - lam * C[a] + discount * sum(P[a][s][n] * V[n] for n in range(S)) for a in range(A)]
            for s in range(S)
        ]
        new = [max(row) for row in Q]
        if horizon is None and max(abs(x - y) for x, y in zip(new, V, strict=True)) < tol:
            return Q
        V = new
    return Q


def index_by_scan(P, R, C, state, level, discount, horizon=None, time_to_go=None, lo=-5.0, hi=5.0, n_scan=41):
    """Charge at which the best action of level >= ``level`` stops beating the best below it: a scan of
    charges for the first sign change, then plain bisection."""

    def advantage(lam):
        q = q_table(P, R, C, lam, discount, horizon, time_to_go)[state]
        return max(q[level:]) - max(q[:level])

    grid = [lo + (hi - lo) * i / (n_scan - 1) for i in range(n_scan)]
    vals = [advantage(x) for x in grid]
    i = next(i for i in range(n_scan - 1) if vals[i] > 0 >= vals[i + 1])
    a, b = grid[i], grid[i + 1]
    for _ in range(50):
        m = 0.5 * (a + b)
        a, b = (m, b) if advantage(m) > 0 else (a, m)
    return 0.5 * (a + b)


def active_sets(P, R, C, discount, charges):
    """Optimal action per state at each charge (plain value iteration)."""
    out = []
    for lam in charges:
        Q = q_table(P, R, C, lam, discount)
        out.append(tuple(max(range(len(q)), key=lambda a, q=q: q[a]) for q in Q))
    return out


def best_subset(weights, feasible):
    """Brute-force enumeration over every subset: (best value, best 0/1 tuple)."""
    n = len(weights)
    best, arg = float("-inf"), None
    for bits in itertools.product((0, 1), repeat=n):
        if feasible(bits):
            v = sum(w for w, b in zip(weights, bits, strict=True) if b)
            if v > best + 1e-12:
                best, arg = v, bits
    return best, arg
