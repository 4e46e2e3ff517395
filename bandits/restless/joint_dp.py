"""Exact dynamic programming over the joint state of a few independent arms coupled only through a finite set of
feasible joint controls: the one implementation behind the engine's exact DP on coRMAB instances
(:mod:`engine.analysis.exact_dp`) and the restless bandits' (:mod:`bandits.restless.exact`).

Arm j has states 0..S_j - 1 and control values indexed 0..V_j - 1 with transition matrices ``trans[j][v]``
(padded to a common S x S; only the top-left S_j x S_j block is read). A joint control is a row of
``controls`` (K, J): one control index per arm. The joint state index is the mixed-radix number of the arm
states with arm 0 most significant. With h steps to go,

    V_h(s) = max_k [ reward[k, s] + discount * sum_{s'} P(s' | s, k) V_{h-1}(s') ],   V_0 = 0.

The joint transition is a product over arms, so E[V(s') | s, k] is computed arm by arm: each arm's axis of
the value tensor is replaced by its transition matrix applied to it, for all joint controls at once; no joint
transition matrix is built.

The module lives in ``bandits/restless`` (not ``engine/analysis``) because the engine imports the bandits
(the Whittle planner, bandit-backed policies) and the bandits never import the engine: a core both use has to
sit below both. It depends on numpy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

_CHUNK = 4_000_000  # floats per temporary block

# h -> (rewards (K', S), per-arm matrices (K', J, S_max, S_max), pick (S,) index into K' for every joint state)
PolicyStep = Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def joint_states(counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """(S, J) every joint state in index order (arm 0 most significant) for ``counts`` states per arm."""
    counts = tuple(int(c) for c in counts)
    return np.indices(counts).reshape(len(counts), -1).T


def state_index(states: np.ndarray, counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """Mixed-radix index of arm states (J,) or a batch (k, J) with ``counts`` states per arm."""
    states = np.asarray(states, dtype=np.int64)
    c = np.asarray(counts, dtype=np.int64)
    place = np.concatenate([np.cumprod(c[::-1])[::-1][1:], [1]])
    return states @ place


def product_distribution(initial: np.ndarray, counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """(S,) probability of each joint state when arm j starts independently from ``initial[j]`` (J, S_max)."""
    rho = np.asarray(initial, dtype=float)
    return np.prod(rho[np.arange(rho.shape[0]), joint_states(counts)], axis=1)


def control_matrices(trans: Sequence[np.ndarray], controls: np.ndarray) -> np.ndarray:
    """(K, J, S, S): each arm's transition matrix under each joint control (``trans[j]`` is (V_j, S, S))."""
    controls = np.asarray(controls, dtype=np.int64)
    out = np.empty((len(controls), len(trans), *np.asarray(trans[0]).shape[1:]))
    for j, t in enumerate(trans):
        out[:, j] = np.asarray(t)[controls[:, j]]
    return out


def additive_rewards(rewards: Sequence[np.ndarray], controls: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """(K, S) sum_j rewards[j][s_j, v_kj] for every joint control k and joint state s (``rewards[j]`` is
    (S_max, V_j), the expected step reward of arm j in state s under control v)."""
    states = joint_states(counts)
    controls = np.asarray(controls, dtype=np.int64)
    out = np.zeros((len(controls), len(states)))
    for j, r in enumerate(rewards):
        out += np.asarray(r, dtype=float)[states[:, j][None, :], controls[:, j][:, None]]
    return out


def expected_next(values: np.ndarray, mats: np.ndarray, counts: Sequence[int]) -> np.ndarray:
    """(K, S) E[values(s') | s, k] for per-arm transition matrices ``mats`` (K, J, S_max, S_max)."""
    counts = tuple(int(c) for c in counts)
    K, J = mats.shape[:2]
    S = values.shape[0]
    out = np.empty((K, S))
    step = max(1, _CHUNK // S)
    for k0 in range(0, K, step):
        m = mats[k0 : k0 + step]
        X = np.broadcast_to(values, (len(m), S)).reshape(len(m), counts[0], S // counts[0])
        for j in range(J):  # contract arm j's axis (leading), then rotate it to the back
            n = counts[j]
            Y = np.zeros_like(X)
            for t in range(n):  # products then sums (no fused multiply-add): p V(up) + (1 - p) V(down) exactly
                w = m[:, j, :n, t]
                if np.any(w):
                    Y = Y + w[:, :, None] * X[:, t, None, :]
            nxt = counts[(j + 1) % J]
            X = Y.transpose(0, 2, 1).reshape(len(m), nxt, S // nxt)
        out[k0 : k0 + step] = X.reshape(len(m), S)
    return out


def _continuation(values: np.ndarray, mats: np.ndarray, counts: Sequence[int], discount: float) -> np.ndarray:
    nxt = expected_next(values, mats, counts)
    return nxt if discount == 1.0 else discount * nxt


def backward_induction(
    reward: np.ndarray, mats: np.ndarray, counts: Sequence[int], horizon: int, discount: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal values (H + 1, S) (row h: h steps to go) and an optimal joint control per state (H + 1, S)
    (index into the K rows of ``reward`` (K, S) and ``mats`` (K, J, S_max, S_max); row 0 unused)."""
    S = reward.shape[1]
    values = np.zeros((horizon + 1, S))
    choice = np.zeros((horizon + 1, S), dtype=np.int64)
    for h in range(1, horizon + 1):
        q = reward + _continuation(values[h - 1], mats, counts, discount)
        choice[h] = np.argmax(q, axis=0)
        values[h] = q[choice[h], np.arange(S)]
    return values, choice


def policy_values(counts: Sequence[int], horizon: int, step: PolicyStep, discount: float = 1.0) -> np.ndarray:
    """(S,) exact expected return over ``horizon`` steps of the deterministic Markov policy ``step``: with h steps
    to go it returns the rewards and per-arm matrices of the joint controls it uses and, per joint state, which."""
    value = np.zeros(int(np.prod(np.asarray(counts, dtype=np.int64))))
    for h in range(1, horizon + 1):
        reward, mats, pick = step(h)
        q = reward + _continuation(value, mats, counts, discount)
        value = q[np.asarray(pick, dtype=np.int64), np.arange(len(value))]
    return value


def distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct rows of ``rows``, the index of each row among them): a policy's joint controls per step."""
    unique, inverse = np.unique(np.asarray(rows), axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)
