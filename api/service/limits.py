"""Bounded work per request: a cost estimate checked before the work starts, and a deadline while it runs.

Every request body is at most ``Settings.max_body_bytes`` and every list in the schemas is bounded, but a small
body can still ask for a lot of work: a Whittle session's indices cost about

    arms x problems x probes x (one solve of an S-state MDP)

where problems = S x (A - 1) per arm (times the horizon H for a finite horizon), each probe of the subsidy
search solves every problem (policy iteration with S x S linear solves when discounted, H steps of backward
induction otherwise) and the indexability check solves (problems + 1) more. :func:`whittle_cost` turns this
into seconds (constants measured on the 2-core development VM, rounded up) and bytes (the per-problem copies
of the transition matrices, and the check's problems x problems tables), per arm: the indices are computed in
chunks of arms (:func:`chunk_arms`), so memory is that of one chunk, and the deadline is checked between
chunks.

A request is refused with 422 ``too_expensive`` (naming the field) when ``now + estimate`` passes its deadline:
``received + budget``, the budget being ``Settings.work_budget_seconds`` of the key's highest scope; the time
already spent reading and validating the body counts. Decisions are bounded by the solver's time limit, which
the budget caps.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass

from api.service.errors import ApiError

#: (deadline as ``time.perf_counter()``, max bytes) of the request being validated: set by the route's key
#: dependency (which runs before the body is validated, in the same task), read by the body model's
#: before-validator so an over-budget session is refused before its numbers are validated one by one
WORK_LIMIT: ContextVar[tuple[float, int] | None] = ContextVar("redwood_work_limit", default=None)

PROBES = 12  # subsidy-search probes assumed per index (4-8 measured on random arms; the deadline catches more)
FLOP_SECONDS = 2.5e-9  # one multiply-add of a batched linear solve (S^3 / problem)
EINSUM_SECONDS = 16e-9  # one multiply-add of the batched Q update (A S^2 / problem)
PROBLEM_SECONDS = 2e-6  # fixed numpy cost per problem and probe
STEP_SECONDS = 1.0e-6  # fixed cost per problem and backward-induction step (finite horizon)
STEP_EINSUM_SECONDS = 3.6e-9  # per multiply-add of one backward-induction step
NUMBER_SECONDS = 1.5e-6  # per number of the body: validation, dump, parse to arrays, store
CHUNK_SECONDS = 0.25  # a chunk of arms is estimated at most this long (the deadline check's granularity)


@dataclass(frozen=True)
class Cost:
    seconds: float
    bytes: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.seconds + other.seconds, self.bytes + other.bytes)


def whittle_arm_cost(n_actions: int, n_states: int, horizon: int | None) -> Cost:
    """Estimated time and peak memory of the Whittle indices of one arm (and their indexability check)."""
    A, S = max(n_actions, 2), max(n_states, 1)
    H = 1 if horizon is None else horizon
    problems = S * (A - 1) * H
    matrices = 8 * A * S * S  # one problem's copy of the transition matrices
    if horizon is None:
        per_solve = FLOP_SECONDS * S**3 + EINSUM_SECONDS * A * S * S + PROBLEM_SECONDS
    else:
        per_solve = H * (STEP_SECONDS + STEP_EINSUM_SECONDS * A * S * S)
    seconds = (PROBES + 1) * problems * per_solve + 2e-8 * problems * problems
    memory = 2 * problems * matrices + 9 * (problems + 1) * problems + (problems + 1) * H * S * 8
    return Cost(seconds, memory)


def whittle_cost(n_arms: int, n_actions: int, n_states: int, horizon: int | None) -> Cost:
    """Estimated time of the Whittle indices of ``n_arms`` arms and the peak memory of one arm's chunk, plus
    the handling of the body's numbers."""
    arm = whittle_arm_cost(n_actions, n_states, horizon)
    numbers = n_arms * (n_actions * n_states * n_states + n_states * n_actions + n_actions + n_states)
    return Cost(n_arms * arm.seconds + NUMBER_SECONDS * numbers, arm.bytes)


def chunk_arms(n_actions: int, n_states: int, horizon: int | None, max_bytes: int) -> int:
    """Arms per chunk: each chunk estimated under :data:`CHUNK_SECONDS` and ``max_bytes`` (at least one)."""
    arm = whittle_arm_cost(n_actions, n_states, horizon)
    by_time = int(CHUNK_SECONDS / max(arm.seconds, 1e-9))
    by_memory = int(max_bytes / max(arm.bytes, 1))
    return max(1, min(by_time, by_memory))


def whittle_shape(arms: object) -> tuple[int, int, int] | None:
    """(arms, actions, states) of a Whittle body's ``arms`` (the largest nested lengths, before the arm model
    checks that they agree); None when ``transitions`` is not a list of lists of lists."""
    P = arms.get("transitions") if isinstance(arms, dict) else None
    if not isinstance(P, list) or not all(isinstance(a, list) for a in P):
        return None
    if not all(isinstance(s, list) for a in P for s in a):
        return None
    n_actions = max((len(a) for a in P), default=0)
    n_states = max((len(s) for a in P for s in a), default=0)
    return len(P), n_actions, n_states


def counts_shape(posterior: object) -> tuple[int, int, int] | None:
    """(arms, actions, states) of a learning session's ``posterior.counts`` (arms, actions, states, states); None
    when it is not nested lists that deep (the validation then reports it)."""
    counts = posterior.get("counts") if isinstance(posterior, dict) else None
    if not isinstance(counts, list) or not counts or not all(isinstance(a, list) and a for a in counts):
        return None
    if not all(isinstance(x, list) for a in counts for x in a):
        return None
    return len(counts), max(len(a) for a in counts), max(len(x) for a in counts for x in a)


def check_raw_whittle(data: object) -> None:
    """The body check of :class:`~api.service.session_schemas.WhittleSessionCreate` (before its numbers are validated)
    against the request's :data:`WORK_LIMIT`; nothing when no limit is set or the shape is malformed (the
    validation then reports it)."""
    limit = WORK_LIMIT.get()
    if limit is None or not isinstance(data, dict) or data.get("kind") != "whittle":
        return
    horizon = data.get("horizon")
    if horizon is not None and (not isinstance(horizon, int) or isinstance(horizon, bool) or not 1 <= horizon <= 1000):
        return  # invalid: reported by the validation (cheaply: the arms are not looked at first)
    if whittle_shape(data.get("arms")) is not None:
        check_session({"kind": "whittle", "arms": data["arms"], "horizon": horizon}, *limit)


def _mb(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def check_session(config: dict, deadline: float, max_bytes: int) -> float:
    """Refuse (422 ``too_expensive``) a session whose estimated creation would pass ``deadline`` (a
    ``time.perf_counter()`` instant) or need more than ``max_bytes``; returns the estimate in seconds."""
    if config["kind"] == "whittle":
        shape, arms_field, when = whittle_shape(config["arms"]), "arms", ""
    elif config["kind"] == "learning_whittle":  # re-plans at every selection, inside the session's write lock
        shape, arms_field, when = counts_shape(config.get("posterior")), "posterior.counts", " at every selection"
    else:
        return 0.0  # semi-bandit sessions: creation is O(arms); each select is bounded by the oracle
    if shape is None:
        return 0.0
    n_arms, n_actions, n_states = shape
    horizon = config.get("horizon")
    cost = whittle_cost(n_arms, n_actions, n_states, horizon)
    left = deadline - time.perf_counter()
    size = (
        f"{n_arms} arms x {n_actions} actions x {n_states} states"
        + (f" x horizon {horizon}" if horizon is not None else "")
        + when
    )
    if cost.bytes > max_bytes:
        field = (
            "horizon"
            if horizon is not None and whittle_cost(1, n_actions, n_states, None).bytes <= max_bytes
            else ("arms.transitions" if arms_field == "arms" else arms_field)
        )
        raise ApiError(
            422,
            "too_expensive",
            f"too large: the Whittle indices of one arm of {size} need about "
            f"{_mb(cost.bytes)} (limit {_mb(max_bytes)}); use fewer states, actions or a shorter "
            "horizon",
            field,
        )
    if cost.seconds > left:
        field = (
            "horizon"
            if horizon is not None and whittle_cost(n_arms, n_actions, n_states, None).seconds <= left
            else arms_field
        )
        raise ApiError(
            422,
            "too_expensive",
            f"too expensive: the Whittle indices of {size} would take about "
            f"{cost.seconds:.1f} s, over this key's budget ({max(left, 0.0):.1f} s left); use fewer "
            "arms, states, actions or a shorter horizon",
            field,
        )
    return cost.seconds


def deadline_passed(deadline: float | None, what: str, field: str) -> None:
    """422 ``too_expensive`` when ``deadline`` (perf_counter) has passed: the work ran past its estimate."""
    if deadline is not None and time.perf_counter() > deadline:
        raise ApiError(422, "too_expensive", f"{what} ran over this key's time budget and was stopped", field)
