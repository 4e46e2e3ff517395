"""Workers as arms: a resource whose state persists across steps and is shared by every beneficiary.

A worker makes at most one call per step and at most ``calls`` calls per episode ("at most 12 calls per worker
per month"). Its state is the number of calls it has made so far, u = 0..calls; a pull is one call (u -> u + 1),
**unavailable** once u = calls (``arms.available``); it earns nothing itself. The worker budget family
(:mod:`scenarios.cormab.worker_budget`) appends W such arms to the J beneficiary arms and ties them with one
row, beneficiary calls == worker calls, so the engine's state is the beneficiaries' states + each worker's
remaining budget + time to go, and the environment, the encoder, the MILPs, the exact DP, the planners and the
occupancy LP all read it as arm states. Unlike pull limits or switching costs, the budget is shared: which
beneficiary gets a call now changes what every beneficiary can get later, so the problem no longer decomposes
per arm.
"""

from __future__ import annotations

import numpy as np

from scenarios.arms import Arms

#: the most calls per worker an instance may give (each call is a worker state: U = calls + 1 states per worker arm,
#: a U x U transition table per action; a worker makes at most one call per step, so more than the horizon is moot)
MAX_CALLS = 1_000


def check_calls(calls: object) -> int:
    """``calls`` as an int in [1, MAX_CALLS], or ``ValueError("calls_per_worker: reason")``."""
    if isinstance(calls, bool) or not isinstance(calls, int) or not 1 <= calls <= MAX_CALLS:
        raise ValueError(f"calls_per_worker: must be an integer in [1, {MAX_CALLS}], got {calls!r}")
    return calls


def worker_tables(calls: int) -> tuple[np.ndarray, np.ndarray]:
    """(transitions (2, U, U), availability (U, 2)) of one worker with U = calls + 1 states (calls made)."""
    U = calls + 1
    P = np.zeros((2, U, U))
    P[0] = np.eye(U)
    u = np.arange(U)
    P[1, u, np.minimum(u + 1, calls)] = 1.0  # at u = calls the pull is unavailable: the row only stays stochastic
    available = np.ones((U, 2), dtype=bool)
    available[calls, 1] = False
    return P, available


def with_workers(beneficiaries: Arms, n_workers: int, calls: int) -> Arms:
    """The beneficiary arms (K = 1) followed by ``n_workers`` worker arms of ``calls`` calls each, every worker
    starting with no call made (in evaluation and in training)."""
    calls = check_calls(calls)
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers: must be an integer >= 1, got {n_workers!r}")
    if beneficiaries.n_levels != 1:
        raise ValueError(f"arms: workers call beneficiaries one at a time (K = 1), got K = {beneficiaries.n_levels}")
    P, available = worker_tables(calls)
    U = calls + 1
    b = beneficiaries
    start = [1.0] + [0.0] * calls
    uniform = [np.full(m, 1.0 / m).tolist() for m in b.state_counts.tolist()]
    own = (
        b.available
        if b.available is not None
        else [b.cache.allowed[j, :m].tolist() for j, m in enumerate(b.state_counts.tolist())]
    )
    return Arms(
        transitions=[*b.transitions, *[P.tolist()] * n_workers],
        arrival_rewards=None if b.arrival_rewards is None else [*b.arrival_rewards, *[[0.0] * U] * n_workers],
        rewards=None if b.rewards is None else [*b.rewards, *[[[0.0, 0.0]] * U] * n_workers],
        costs=None if b.costs is None else [*b.costs, *[[0.0, 1.0]] * n_workers],
        initial=[*(uniform if b.initial is None else b.initial), *[start] * n_workers],
        train_initial=None if b.train_initial is None else [*b.train_initial, *[start] * n_workers],
        available=[*own, *[available.tolist()] * n_workers],
        horizon=b.horizon,
    )


def split_workers(arms: Arms, n_workers: int, calls: int) -> Arms:
    """The beneficiary arms of ``arms`` (the first J - n_workers), after checking that the last ``n_workers`` arms
    are workers of ``calls`` calls; raises ``ValueError("arms...: reason")`` otherwise."""
    calls = check_calls(calls)
    J = arms.n_arms - n_workers
    if J < 1:
        raise ValueError(f"arms: {arms.n_arms} arms cannot hold {n_workers} workers and a beneficiary")
    P, available = worker_tables(calls)
    c = arms.cache
    for w in range(J, arms.n_arms):
        n = int(c.counts[w])
        if (
            n != calls + 1
            or not np.array_equal(c.P[w, :, :n, :n], P)
            or not np.array_equal(c.allowed[w, :n], available)
        ):
            raise ValueError(f"arms.transitions[{w}]: arm {w} is not a worker of {calls} calls (scenarios.worker_arms)")
        paid = c.arrival[w, :n] if c.arrival is not None else c.R[w, :n]
        if np.any(paid != 0):
            raise ValueError(f"arms.rewards[{w}]: a worker arm earns nothing")
    return arms.subset(list(range(J)))
