"""Switching costs as arm state: each arm remembers whether it was pulled on the previous step (issue 16, item 3).

:func:`with_switching_cost` turns passive/active arms (K = 1) into arms whose state is the pair (x, b): x the
base state, b = 1 if the arm was pulled on the previous step. Augmented state ``2 x + b``; under action a

    P'((x, b), a -> (x', a)) = P(x, a, x'),
    r'((x, b), a) = r(x, a) - on_cost [a = 1, b = 0] - off_cost [a = 0, b = 1],

with r(x, a) the base step reward (E[r(x') | x, a] for rewards paid on arrival). The previous action is part of
each arm's own state, so the augmented arms are ordinary :class:`~scenarios.arms.Arms` and every per-arm
method (environment, encoder, MILP, exact DP, planners) carries the previous allocation unchanged. Sampling
keeps the base arm's trajectory under common random numbers (the descending inverse CDF visits the x' of
the reachable (x', a) in the base order).
"""

from __future__ import annotations

import math

import numpy as np

from scenarios.arms import Arms, first_of_copies

_TOL = 1e-9


def _check_costs(on_cost: float, off_cost: float) -> None:
    for name, value in (("on_cost", on_cost), ("off_cost", off_cost)):
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}: must be a finite number >= 0, got {value!r}")


def with_switching_cost(arms: Arms, on_cost: float, off_cost: float) -> Arms:
    """The arms with state (x, b) (index ``2 x + b``): pulling an arm idle on the previous step costs
    ``on_cost``, idling an arm pulled on the previous step costs ``off_cost``; every episode starts with
    b = 0 (no arm pulled before the first step)."""
    _check_costs(on_cost, off_cost)
    if arms.n_levels != 1:
        raise ValueError(f"arms: switching costs need passive/active arms (K = 1), got K = {arms.n_levels}")
    c = arms.cache
    transitions, rewards = [], []
    for j, n in enumerate(c.counts.tolist()):
        P = c.P[j, :, :n, :n]  # (2, n, n)
        P2 = np.zeros((2, 2 * n, 2 * n))
        for a in (0, 1):
            for b in (0, 1):
                P2[a, 2 * np.arange(n) + b, a::2] = P[a]
        R2 = np.repeat(c.R[j, :n, :], 2, axis=0)  # row 2x + b holds r(x, .)
        R2[0::2, 1] -= on_cost
        R2[1::2, 0] -= off_cost
        transitions.append(P2.tolist())
        rewards.append(R2.tolist())

    # the default (uniform) initial distribution is made explicit: uniform over x, b = 0
    initial = arms.initial if arms.initial is not None else [[1.0 / n] * n for n in c.counts.tolist()]
    return Arms(
        transitions=transitions,
        rewards=rewards,
        costs=arms.costs,
        initial=first_of_copies(initial, 2),
        train_initial=first_of_copies(arms.train_initial, 2),
        available=None
        if arms.available is None
        else [np.repeat(c.allowed[j, :n], 2, axis=0).tolist() for j, n in enumerate(c.counts.tolist())],
        horizon=arms.horizon,
    )


def check_switching(arms: Arms, on_cost: float, off_cost: float) -> None:
    """Raise ``ValueError("arms...: reason")`` unless ``arms`` are switching arms with these costs: K = 1, an
    even state count per arm, rows of (x, 0) and (x, 1) equal and reaching only b' = a, and rewards that differ
    between b = 0 and b = 1 by exactly the costs (the initial distributions may put mass on b = 1)."""
    _check_costs(on_cost, off_cost)
    if arms.n_levels != 1:
        raise ValueError(f"arms: switching arms have passive/active actions (K = 1), got K = {arms.n_levels}")
    c = arms.cache
    for j, m in enumerate(c.counts.tolist()):
        if m % 2:
            raise ValueError(f"arms.transitions[{j}]: switching arms have 2 states per base state, got {m}")
        P, R = c.P[j, :, :m, :m], c.R[j, :m, :]
        for a in (0, 1):
            if np.any(np.abs(P[a, 0::2] - P[a, 1::2]) > _TOL):
                raise ValueError(f"arms.transitions[{j}][{a}]: states 2x and 2x+1 must have the same row")
            if np.any(P[a, :, 1 - a :: 2] > _TOL):
                raise ValueError(f"arms.transitions[{j}][{a}]: action {a} must lead to states whose b = {a}")
        scale = 1.0 + np.abs(R).max()
        if np.any(np.abs(R[0::2, 0] - R[1::2, 0] - off_cost) > _TOL * scale):
            raise ValueError(f"arms.rewards[{j}]: r(2x, 0) - r(2x+1, 0) must equal off_cost = {off_cost}")
        if np.any(np.abs(R[1::2, 1] - R[0::2, 1] - on_cost) > _TOL * scale):
            raise ValueError(f"arms.rewards[{j}]: r(2x+1, 1) - r(2x, 1) must equal on_cost = {on_cost}")


def base_arms(arms: Arms) -> Arms:
    """The base arms of switching arms (x only, step rewards r(x, a), read where no cost applies: r(x, 0) from
    b = 0, r(x, 1) from b = 1); the initial distributions are the marginals over b."""
    c = arms.cache
    transitions, rewards = [], []
    for j, m in enumerate(c.counts.tolist()):
        P = c.P[j, :, 0:m:2, :m]  # rows of b = 0
        transitions.append((P[:, :, 0::2] + P[:, :, 1::2]).tolist())
        R = np.stack([c.R[j, 0:m:2, 0], c.R[j, 1:m:2, 1]], axis=1)  # r(x, 0) from b = 0, r(x, 1) from b = 1
        rewards.append(R.tolist())

    def marginal(rows: list[list[float]] | None) -> list[list[float]] | None:
        return None if rows is None else [(np.asarray(r)[0::2] + np.asarray(r)[1::2]).tolist() for r in rows]

    return Arms(
        transitions=transitions,
        rewards=rewards,
        costs=arms.costs,
        initial=marginal(arms.initial),
        train_initial=marginal(arms.train_initial),
        available=None
        if arms.available is None
        else [c.allowed[j, 0:m:2].tolist() for j, m in enumerate(c.counts.tolist())],
        horizon=arms.horizon,
    )
