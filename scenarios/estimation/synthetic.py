"""A synthetic restless programme with clustered arms, and logs of it under a random logging policy.

Arms come in clusters: each cluster has centre transition rows, and each arm's rows are Dirichlet draws
around its cluster's centre (``within_cluster`` is that Dirichlet's concentration: larger, more alike).
Arms are logged unevenly (log-normal shares, ``sparsity`` is the log-scale spread), as when beneficiaries
enrol at different times, so some arms have many records and some very few.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scenarios.errors import InvalidInputError
from scenarios.estimation.logs import TransitionLog


class SyntheticProgramme(NamedTuple):
    transitions: np.ndarray  # (arms, actions, states, states), true dynamics
    clusters: np.ndarray  # (arms,) cluster id of each arm
    features: np.ndarray  # (arms, 2) noisy cluster embedding, for pooling by features
    initial: np.ndarray  # (states,) distribution of an episode's first state
    arm_weights: np.ndarray  # (arms,) share of logged episodes per arm, sums to 1
    row_prior: np.ndarray  # (arms, actions, states, states) the Dirichlet parameters the true rows were drawn from


def synthetic_programme(
    n_arms: int = 30,
    n_states: int = 3,
    n_actions: int = 2,
    n_clusters: int = 3,
    seed: int = 0,
    within_cluster: float = 200.0,
    sparsity: float = 1.0,
) -> SyntheticProgramme:
    """Clustered arms whose states are ordered (0 worst); higher actions push arms up, passive drifts down."""
    if not 1 <= n_clusters <= n_arms or n_states < 2 or n_actions < 1:
        raise InvalidInputError("programme", "need 1 <= n_clusters <= n_arms, n_states >= 2, n_actions >= 1")
    rng = np.random.default_rng(seed)
    clusters = np.arange(n_arms) % n_clusters
    rng.shuffle(clusters)
    # Centre rows: a tilt towards better states that grows with the action, plus cluster-specific noise.
    offsets = np.arange(n_states)[None, :] - np.arange(n_states)[:, None]  # next - current
    tilt = np.linspace(-0.8, 0.8, n_actions) if n_actions > 1 else np.zeros(1)
    logits = -0.6 * np.abs(offsets)[None, None] + tilt[None, :, None, None] * offsets[None, None]
    logits = logits + rng.normal(0.0, 0.5, size=(n_clusters, n_actions, n_states, n_states))
    centres = np.exp(logits)
    centres /= centres.sum(-1, keepdims=True)
    alpha = within_cluster * (0.98 * centres + 0.02 / n_states)[clusters]
    gammas = rng.standard_gamma(alpha)
    transitions = gammas / gammas.sum(-1, keepdims=True)
    angles = 2 * np.pi * np.arange(n_clusters) / n_clusters
    features = 3.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)[clusters] + rng.normal(0, 0.7, (n_arms, 2))
    initial = rng.dirichlet(np.full(n_states, 4.0))
    weights = np.exp(rng.normal(0.0, sparsity, n_arms))
    return SyntheticProgramme(transitions, clusters, features, initial, weights / weights.sum(), alpha)


def simulate_log(
    transitions: np.ndarray,
    n_records: int,
    rng: np.random.Generator,
    active_prob: float = 0.4,
    episode_length: int = 10,
    initial: np.ndarray | None = None,
    arm_weights: np.ndarray | None = None,
) -> TransitionLog:
    """``n_records`` transitions from episodes of ``episode_length`` steps, one arm per episode.

    Each episode picks an arm (by ``arm_weights``, default uniform), starts from ``initial`` (default
    uniform) and acts at random each step: passive (action 0) with probability ``1 - active_prob``, else an
    active level drawn uniformly. Records are in episode order; the last episode is cut at ``n_records``.
    """
    P = np.asarray(transitions, dtype=np.float64)
    N, A, S, _ = P.shape
    if not 0.0 <= active_prob <= 1.0 or episode_length < 1 or n_records < 0:
        raise InvalidInputError("simulate_log", "need 0 <= active_prob <= 1, episode_length >= 1, n_records >= 0")
    start = np.full(S, 1.0 / S) if initial is None else np.asarray(initial, dtype=np.float64)
    n_episodes = -(-n_records // episode_length)
    arms = rng.choice(N, size=n_episodes, p=arm_weights)
    state = _draw(np.broadcast_to(start, (n_episodes, S)), rng)
    columns: dict[str, list[np.ndarray]] = {"state": [], "action": [], "next_state": []}
    for _ in range(episode_length):
        action = np.zeros(n_episodes, dtype=np.int64)
        if A > 1:
            action = np.where(rng.random(n_episodes) < active_prob, rng.integers(1, A, n_episodes), 0)
        nxt = _draw(P[arms, action, state], rng)
        for name, values in (("state", state), ("action", action), ("next_state", nxt)):
            columns[name].append(values)
        state = nxt
    flat = {name: np.stack(parts, axis=1).reshape(-1)[:n_records] for name, parts in columns.items()}
    arm = np.repeat(arms, episode_length)[:n_records]
    return TransitionLog(arm, flat["state"], flat["action"], flat["next_state"], N, S, A)


def _draw(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of ``probabilities``."""
    u = rng.random(len(probabilities))[:, None]
    return np.minimum((np.cumsum(probabilities, axis=-1) < u).sum(-1), probabilities.shape[-1] - 1)
