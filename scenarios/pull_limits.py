"""Hard per-arm limits as arm state: a cap on pulls per episode and a cooldown after each pull (issue 16, item 3).

:func:`with_pull_limits` turns passive/active arms (K = 1) into arms whose state is the triple (x, u, w): x the
base state, u the pulls made so far this episode (0..``max_pulls``), w the steps left before the arm may be
pulled again (0..``cooldown``). State index ``(x * U + u) * W + w`` with U = max_pulls + 1 (1 without a cap) and
W = cooldown + 1. Under action a

    P'((x, u, w), a -> (x', min(u + a, max_pulls), cooldown if a else max(w - 1, 0))) = P(x, a, x'),

rewards are the base arm's (r(x') on arrival, or r(x, a)), and the pull is **unavailable** (``arms.available``)
where u = max_pulls or w > 0: every decision path refuses it (the environment raises, planners and baselines
never choose it). "At most 3 calls per beneficiary per month" is ``max_pulls=3`` over a 30-step horizon;
"not two days running" is ``cooldown=1``. The limits are each arm's own state, so the arms stay independent
MDPs and the planners' per-arm chains model them exactly.

The counters are deterministic given (s, a), so the descending inverse CDF draws the same x' as the base arm
from the same uniform: the limited arms follow the base trajectory under common random numbers.
"""

from __future__ import annotations

import numpy as np

from scenarios.arms import Arms, first_of_copies


def counter_sizes(max_pulls: int | None, cooldown: int) -> tuple[int, int]:
    """(U, W): the pull counter's and the cooldown counter's number of values."""
    return (1 if max_pulls is None else max_pulls + 1), cooldown + 1


def check_limits(max_pulls: int | None, cooldown: int) -> None:
    """Raise ``ValueError("field: reason")`` on limits that are not integers in range."""
    if max_pulls is not None and (isinstance(max_pulls, bool) or not isinstance(max_pulls, int) or max_pulls < 0):
        raise ValueError(f"max_pulls: must be an integer >= 0 or None (no cap), got {max_pulls!r}")
    if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
        raise ValueError(f"cooldown: must be an integer >= 0, got {cooldown!r}")


def _next_counters(max_pulls: int | None, cooldown: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over every counter pair (u, w) in index order: (next pair index without a pull, with a pull, pull allowed)."""
    U, W = counter_sizes(max_pulls, cooldown)
    u, w = np.divmod(np.arange(U * W), W)
    cap = U - 1
    idle = u * W + np.maximum(w - 1, 0)
    pulled = np.minimum(u + 1, cap) * W + cooldown if max_pulls is not None else u * W + cooldown
    allowed = (w == 0) & ((u < cap) if max_pulls is not None else True)
    return idle, pulled, np.asarray(allowed, dtype=bool)


def with_pull_limits(arms: Arms, max_pulls: int | None = None, cooldown: int = 0) -> Arms:
    """The arms with state (x, u, w) (index ``(x U + u) W + w``): at most ``max_pulls`` pulls per episode (None:
    no cap) and ``cooldown`` steps without a pull after each pull; every episode starts with u = w = 0."""
    check_limits(max_pulls, cooldown)
    if arms.n_levels != 1:
        raise ValueError(f"arms: pull limits need passive/active arms (K = 1), got K = {arms.n_levels}")
    U, W = counter_sizes(max_pulls, cooldown)
    C = U * W
    idle, pulled, allowed = _next_counters(max_pulls, cooldown)
    c = arms.cache
    transitions, available = [], []
    arrival: list | None = [] if c.arrival is not None else None
    rewards: list | None = None if c.arrival is not None else []
    for j, n in enumerate(c.counts.tolist()):
        P = c.P[j, :, :n, :n]
        P2 = np.zeros((2, n * C, n * C))
        for x in range(n):
            rows = x * C + np.arange(C)
            for a, nxt in ((0, idle), (1, pulled)):
                cols = np.arange(n)[None, :] * C + nxt[:, None]  # (C, n): next (x', counters) of each row
                P2[a, rows[:, None], cols] = P[a, x][None, :]
        transitions.append(P2.tolist())
        own = np.repeat(c.allowed[j, :n], C, axis=0)  # the base arm's own availability, per base state
        own[:, 1] &= np.tile(allowed, n)
        available.append(own.tolist())
        if arrival is not None and c.arrival is not None:
            arrival.append(np.repeat(c.arrival[j, :n], C).tolist())
        if rewards is not None:
            rewards.append(np.repeat(c.R[j, :n, :], C, axis=0).tolist())

    initial = arms.initial if arms.initial is not None else [[1.0 / n] * n for n in c.counts.tolist()]
    return Arms(
        transitions=transitions,
        arrival_rewards=arrival,
        rewards=rewards,
        costs=arms.costs,
        initial=first_of_copies(initial, C),
        train_initial=first_of_copies(arms.train_initial, C),
        available=available,
        horizon=arms.horizon,
    )


def base_arms(arms: Arms, max_pulls: int | None = None, cooldown: int = 0) -> Arms:
    """The base arms of limited arms (x only): transitions and rewards read at u = w = 0, initial distributions
    the marginals over the counters."""
    check_limits(max_pulls, cooldown)
    U, W = counter_sizes(max_pulls, cooldown)
    C = U * W
    c = arms.cache
    transitions, arrival, rewards = [], [], []
    for j, m in enumerate(c.counts.tolist()):
        if m % C:
            raise ValueError(f"arms.transitions[{j}]: limited arms have {C} states per base state, got {m}")
        P = c.P[j, :, 0:m:C, :m]  # rows of u = w = 0
        transitions.append(P.reshape(2, m // C, m // C, C).sum(-1).tolist())
        if c.arrival is not None:
            arrival.append(c.arrival[j, 0:m:C].tolist())
        else:
            rewards.append(c.R[j, 0:m:C, :].tolist())

    def marginal(rows: list[list[float]] | None) -> list[list[float]] | None:
        return None if rows is None else [np.asarray(r).reshape(-1, C).sum(-1).tolist() for r in rows]

    return Arms(
        transitions=transitions,
        arrival_rewards=arrival if arms.on_arrival else None,
        rewards=None if arms.on_arrival else rewards,
        costs=arms.costs,
        initial=marginal(arms.initial),
        train_initial=marginal(arms.train_initial),
        available=None if max_pulls == 0 else _base_availability(arms, C),  # cap 0: no pull says anything
        horizon=arms.horizon,
    )


def _base_availability(arms: Arms, copies: int) -> list | None:
    """The base arms' own availability: read at u = w = 0, where the counters allow every pull (None when it
    allows every action)."""
    c = arms.cache
    rows = [c.allowed[j, 0:m:copies].tolist() for j, m in enumerate(c.counts.tolist())]
    return None if all(all(all(r) for r in arm) for arm in rows) else rows


def check_pull_limits(arms: Arms, max_pulls: int | None, cooldown: int) -> None:
    """Raise ``ValueError("arms...: reason")`` unless ``arms`` are exactly the limited arms of their base arms
    (transitions, rewards and availability rebuilt from the base arms; the initial distributions may put mass on
    any counter values)."""
    rebuilt = with_pull_limits(base_arms(arms, max_pulls, cooldown), max_pulls, cooldown)
    mine, theirs = arms.cache, rebuilt.cache
    for name, a, b in (("transitions", mine.P, theirs.P), ("rewards", mine.R, theirs.R)):
        bad = np.argwhere(~np.isclose(a, b, atol=1e-9)).tolist()
        if bad:
            raise ValueError(
                f"arms.{name}[{bad[0][0]}]: not the arms of max_pulls={max_pulls}, cooldown={cooldown} "
                "(counters must advance as documented in scenarios.pull_limits)"
            )
    wrong = np.argwhere(mine.allowed != theirs.allowed).tolist()
    if wrong:
        j, s, k = wrong[0]
        raise ValueError(
            f"arms.available[{j}][{s}][{k}]: must be {bool(theirs.allowed[j, s, k])} for max_pulls={max_pulls}, "
            f"cooldown={cooldown}"
        )
