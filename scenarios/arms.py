"""Arms as data: heterogeneous finite MDPs, one per arm, shared by the allocation families and the restless bandits.

Arm j has ``S_j >= 2`` states and actions 0..K (K >= 1 intervention levels, the same K for every arm) with
strictly increasing costs (default 0, 1, ..., K). Its transitions are ``transitions[j][a][s][s']``; rewards are
either paid on arrival, ``arrival_rewards[j][s']`` (the step reward is sum_j r_j(s'_j)), or per state and
action, ``rewards[j][s][a]``. ``initial`` / ``train_initial`` are the initial distributions for evaluation
and training. Arms with fewer states than the largest are padded internally with unreachable absorbing
states of reward 0, so every array has a common state axis ``n_states`` (per-arm counts: ``state_counts``).

Sampling uses one uniform ``u`` per arm and step: the next state is found by the inverse CDF over the next
states taken in descending order (largest s' first). For birth-death arms this is ``up iff u < p``, so
:func:`birth_death_arms` reproduces the benchmark's trajectories under common random numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from scenarios.arm_validation import validate_arms
from scenarios.errors import InvalidInputError
from scenarios.validation import parse_model

BIRTH_DEATH_STATES = 4


class _Cache:
    """Padded float64 arrays of an :class:`Arms` (read-only)."""

    def __init__(self, arms: Arms) -> None:
        counts = np.array([len(P[0]) for P in arms.transitions], dtype=np.int64)
        N, A, S = len(counts), len(arms.transitions[0]), int(counts.max())
        self.counts = counts
        self.P = np.zeros((N, A, S, S))
        self.P[:, :, np.arange(S), np.arange(S)] = 1.0  # padded states stay where they are (never reached)
        self.arrival = None if arms.arrival_rewards is None else np.zeros((N, S))
        self.init = np.zeros((N, S))
        self.train_init = np.zeros((N, S))
        R_sa = np.zeros((N, S, A))
        if np.all(counts == S):  # rectangular: one conversion
            self.P[:] = np.asarray(arms.transitions, dtype=float)
        else:  # every arm, the largest included (padding only below the others' counts)
            for j, n in enumerate(counts.tolist()):
                self.P[j, :, :n, :n] = np.asarray(arms.transitions[j], dtype=float)
                self.P[j, :, :n, n:] = 0.0
        for name, target in (("initial", self.init), ("train_initial", self.train_init)):
            rows = getattr(arms, name) if getattr(arms, name) is not None else arms.initial
            for j, n in enumerate(counts.tolist()):
                target[j, :n] = 1.0 / n if rows is None else rows[j]
        arrival_rows, sa_rows = arms.arrival_rewards, arms.rewards
        if self.arrival is not None and arrival_rows is not None:
            for j, n in enumerate(counts.tolist()):
                self.arrival[j, :n] = arrival_rows[j]
            R_sa = np.einsum("nasj,nj->nsa", self.P, self.arrival)  # E[r(s')] given (s, a)
        elif sa_rows is not None:
            for j, n in enumerate(counts.tolist()):
                R_sa[j, :n] = sa_rows[j]
        self.R = R_sa
        self.allowed = np.ones((N, S, A), dtype=bool)  # padded states: every action (never reached)
        if arms.available is not None:
            for j, n in enumerate(counts.tolist()):
                self.allowed[j, :n] = np.asarray(arms.available[j], dtype=bool)
        self.restricted = not bool(self.allowed.all())
        K = A - 1
        self.C = (
            np.broadcast_to(np.arange(K + 1, dtype=float), (N, A)).copy()
            if arms.costs is None
            else np.asarray(arms.costs, dtype=float)
        )
        # inverse CDF over next states in descending order: cdf[..., k] = P(s' >= S - 1 - k)
        self.cdf = np.cumsum(self.P[..., ::-1], axis=-1)
        positive = self.P[..., ::-1] > 0
        self.last = S - 1 - np.argmax(positive[..., ::-1], axis=-1)  # last descending position with mass
        cum_init = [np.cumsum(x[:, ::-1], axis=-1) for x in (self.init, self.train_init)]
        self.init_cdf, self.train_init_cdf = cum_init
        self.init_last = [S - 1 - np.argmax((x[:, ::-1] > 0)[:, ::-1], axis=-1) for x in (self.init, self.train_init)]
        # arms grouped by state count: a group's padded next states lead the descending order with mass 0, so
        # sampling needs only the last `count` cdf columns (a patrol's 4-state sites beside its J-state position)
        self.groups = [
            (idx, int(n), np.ascontiguousarray(self.cdf[idx][..., S - n :]), self.last[idx])
            for n in np.unique(counts).tolist()
            for idx in [np.flatnonzero(counts == n)]
        ]
        for arr in (self.P, self.R, self.C, self.init, self.train_init, self.cdf, self.counts, self.allowed):
            arr.setflags(write=False)
        for _, _, cdf, last in self.groups:
            cdf.setflags(write=False)
            last.setflags(write=False)


class Arms(BaseModel):
    """Heterogeneous arms (finite MDPs); round-trips through JSON (``model_dump_json`` / ``Arms.parse``).

    Also accepts the benchmark's birth-death form (``p_passive``, ``p_active``, ``rewards`` (J, 4),
    ``init_prob``, ``train_init_prob``, ``horizon``) and converts it (:func:`birth_death_arms`).
    """

    model_config = ConfigDict(extra="forbid")

    transitions: list[list[list[list[float]]]] = Field(
        description="P[arm][action][state][next state]; arm j is an S_j x S_j matrix per action (S_j >= 2)"
    )
    arrival_rewards: list[list[float]] | None = Field(
        None, description="r[arm][next state], paid on arrival (step reward sum_j r_j(s'_j)); or give rewards"
    )
    rewards: list[list[list[float]]] | None = Field(
        None, description="r[arm][state][action], reward of the step; or give arrival_rewards"
    )
    costs: list[list[float]] | None = Field(
        None, description="cost[arm][action], non-negative, strictly increasing (default 0, 1, ..., K)"
    )
    initial: list[list[float]] | None = Field(
        None, description="initial state distribution per arm for evaluation (default uniform)"
    )
    train_initial: list[list[float]] | None = Field(
        None, description="initial state distribution per arm during training (default: initial)"
    )
    available: list[list[list[bool]]] | None = Field(
        None,
        description="available[arm][state][action]: whether the action may be taken in that state (default: every "
        "action everywhere); the passive action 0 must be available in every state. Hard limits such as a cap "
        "on pulls per episode or a cooldown are state-dependent availability (scenarios.pull_limits)",
    )
    horizon: int = Field(20, ge=1, le=10_000, description="steps per episode")
    _cache: _Cache | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        if isinstance(data, dict) and "p_passive" in data:
            return _birth_death_fields(**BirthDeathForm.model_validate(data).model_dump())
        return data

    @model_validator(mode="after")
    def _check(self) -> Arms:
        validate_arms(self)
        return self

    def __eq__(self, other: object) -> bool:
        """Equal fields (the cached arrays are not compared)."""
        return isinstance(other, Arms) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------------------------ building
    @classmethod
    def parse(cls, data: object) -> Arms:
        """Validate a dict, JSON text or model; errors become ``InvalidInputError`` naming the field."""
        return parse_model(cls, data, "arms")

    @classmethod
    def from_arrays(
        cls,
        transitions: np.ndarray,
        rewards: np.ndarray,
        costs: np.ndarray | None = None,
        initial: np.ndarray | None = None,
        horizon: int = 20,
    ) -> Arms:
        """Build from padded arrays: ``rewards`` (arms, states, actions) is r(s, a), (arms, states) r(s) for every
        action; ``costs`` may be one row (actions,) for all arms; ``initial`` defaults to uniform."""
        P = np.asarray(transitions, dtype=float)
        if P.ndim != 4:
            raise InvalidInputError("arms.transitions", f"expected 4 dimensions, got shape {P.shape}")
        N, A = P.shape[:2]
        R = np.asarray(rewards, dtype=float)
        if R.ndim == 2:
            R = np.repeat(R[:, :, None], A, axis=2)
        data: dict[str, Any] = {"transitions": P.tolist(), "rewards": R.tolist(), "horizon": horizon}
        if costs is not None:
            C = np.asarray(costs, dtype=float)
            data["costs"] = np.broadcast_to(C, (N, C.shape[-1])).tolist()
        if initial is not None:
            data["initial"] = np.asarray(initial, dtype=float).tolist()
        return cls.parse(data)

    # ----------------------------------------------------------------------------------- accessors
    @property
    def cache(self) -> _Cache:
        if self._cache is None:
            self._cache = _Cache(self)
        return self._cache

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(transitions (N, A, S, S), rewards r(s, a) (N, S, A), costs (N, A), initial (N, S)), padded, cached."""
        c = self.cache
        return c.P, c.R, c.C, c.init

    @property
    def n_arms(self) -> int:
        return len(self.transitions)

    @property
    def n_actions(self) -> int:
        """K + 1: the passive action and K intervention levels."""
        return len(self.transitions[0])

    @property
    def n_levels(self) -> int:
        """K, the number of intervention levels (1 for passive/active arms)."""
        return self.n_actions - 1

    @property
    def n_states(self) -> int:
        """The padded state count (the largest arm's)."""
        return int(self.cache.counts.max())

    @property
    def state_counts(self) -> np.ndarray:
        """(N,) states of each arm."""
        return self.cache.counts

    @property
    def restricted(self) -> bool:
        """Whether some action is unavailable in some state (``available`` given with a False entry)."""
        return self.available is not None and self.cache.restricted

    def allowed(self, states: np.ndarray) -> np.ndarray:
        """(..., N, A) whether each arm may take each action in ``states`` (..., N)."""
        return self.cache.allowed[np.arange(self.n_arms), np.asarray(states, dtype=np.int64)]

    @property
    def on_arrival(self) -> bool:
        """Rewards are paid on the state reached (r(s')), not per state and action."""
        return self.arrival_rewards is not None

    def initial_distribution(self, training: bool = False) -> np.ndarray:
        """(N, S) initial state distribution (padded)."""
        return self.cache.train_init if training else self.cache.init

    def expected_reward(self, states: np.ndarray, levels: np.ndarray) -> np.ndarray:
        """(..., N) expected reward of each arm's step from ``states`` at action ``levels``."""
        return self.cache.R[np.arange(self.n_arms), np.asarray(states), np.asarray(levels)]

    def realised_reward(self, states: np.ndarray, levels: np.ndarray, next_states: np.ndarray) -> np.ndarray:
        """(..., N) reward each arm paid on the step (r(s') on arrival, else r(s, a))."""
        arm = np.arange(self.n_arms)
        if self.cache.arrival is not None:
            return self.cache.arrival[arm, np.asarray(next_states)]
        return self.cache.R[arm, np.asarray(states), np.asarray(levels)]

    def sample(self, states: np.ndarray, levels: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Next states for one uniform per arm: inverse CDF over next states in descending order (arms with as
        many states sampled together, over their own states only)."""
        c, S = self.cache, self.n_states
        s, a, u = np.asarray(states), np.asarray(levels), np.asarray(uniforms)
        if len(c.groups) == 1:
            arm = np.arange(self.n_arms)
            k = np.minimum((u[..., None] >= c.cdf[arm, a, s]).sum(-1), c.last[arm, a, s])
            return (S - 1 - k).astype(np.int64)
        shape = np.broadcast_shapes(s.shape, a.shape, u.shape, (self.n_arms,))
        s, a, u = (np.broadcast_to(x, shape) for x in (s, a, u))
        out = np.empty(shape, dtype=np.int64)
        for idx, n, cdf, last in c.groups:
            arm = np.arange(len(idx))
            sg, ag = s[..., idx], a[..., idx]
            k = (S - n) + (u[..., idx, None] >= cdf[arm, ag, sg]).sum(-1)
            out[..., idx] = S - 1 - np.minimum(k, last[arm, ag, sg])
        return out

    def sample_initial(self, uniforms: np.ndarray, training: bool = False) -> np.ndarray:
        """Initial states for one uniform per arm (the same descending inverse CDF)."""
        c = self.cache
        cdf, last = (c.train_init_cdf, c.init_last[1]) if training else (c.init_cdf, c.init_last[0])
        k = np.minimum((np.asarray(uniforms)[..., None] >= cdf).sum(-1), last)
        return (self.n_states - 1 - k).astype(np.int64)

    def birth_death(self, who: str = "this domain") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_passive, p_active, arrival rewards (N, 4)) of birth-death arms; ``InvalidInputError`` otherwise."""
        S = BIRTH_DEATH_STATES
        c = self.cache
        if self.n_actions != 2 or np.any(c.counts != S) or c.arrival is None:
            raise InvalidInputError(
                "arms", f"{who} needs birth-death arms (4 states, 2 actions, rewards on arrival, up or down one level)"
            )
        p = c.P[:, :, 0, 1]
        if not np.allclose(c.P, birth_death_matrices(p, S), atol=1e-12):
            raise InvalidInputError("arms", f"{who} needs birth-death arms (every step moves up or down one level)")
        return p[:, 0].copy(), p[:, 1].copy(), c.arrival.copy()

    def subset(self, arms: np.ndarray | list[int]) -> Arms:
        """The arms at the given indices (their own state counts kept)."""
        idx = [int(i) for i in np.asarray(arms, dtype=np.int64)]
        pick = lambda rows: None if rows is None else [rows[i] for i in idx]  # noqa: E731
        return Arms(
            transitions=pick(self.transitions),
            arrival_rewards=pick(self.arrival_rewards),
            rewards=pick(self.rewards),
            costs=pick(self.costs),
            initial=pick(self.initial),
            train_initial=pick(self.train_initial),
            available=pick(self.available),
            horizon=self.horizon,
        )


def first_of_copies(rows: list[list[float]] | None, copies: int) -> list[list[float]] | None:
    """Initial distributions of augmented arms whose state ``x`` became ``copies`` states ``x copies + k``: all
    the mass of ``x`` on its first copy (k = 0: no previous pull, no counter used)."""
    if rows is None:
        return None
    out = []
    for row in rows:
        aug = np.zeros(len(row) * copies)
        aug[0::copies] = row
        out.append(aug.tolist())
    return out


class BirthDeathForm(BaseModel):
    """The benchmark's arm JSON: 4 states, up one level with p(a), else down one, clipped; reward r(s')."""

    model_config = ConfigDict(extra="forbid")

    p_passive: list[float] = Field(description="P(up) when the arm is not pulled, one entry per arm")
    p_active: list[float] = Field(description="P(up) when the arm is pulled, one entry per arm")
    rewards: list[list[float]] = Field(description="reward of each of the 4 states, one row per arm")
    init_prob: float = Field(0.2, ge=0.0, le=1.0, description="P(initial state 1) per arm (else 0), evaluation")
    train_init_prob: float = Field(0.5, ge=0.0, le=1.0, description="the same during training")
    horizon: int = Field(20, ge=1, le=10_000)

    @model_validator(mode="after")
    def _check(self) -> BirthDeathForm:
        n = len(self.p_passive)
        if n < 1:
            raise ValueError("p_passive: at least one arm is required")
        for name in ("p_active", "rewards"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} entries (one per arm), got {len(getattr(self, name))}")
        for name in ("p_passive", "p_active"):
            values = np.asarray(getattr(self, name), dtype=float)
            if not np.all(np.isfinite(values)) or np.any((values < 0) | (values > 1)):
                raise ValueError(f"{name}: probabilities must lie in [0, 1]")
        table = np.asarray(self.rewards, dtype=float)
        if table.shape != (n, BIRTH_DEATH_STATES):
            raise ValueError(f"rewards: expected shape ({n}, {BIRTH_DEATH_STATES}), got {table.shape}")
        if not np.all(np.isfinite(table)):
            raise ValueError("rewards: NaN or infinity")
        return self


def birth_death_matrices(p: np.ndarray | float, n_states: int = BIRTH_DEATH_STATES) -> np.ndarray:
    """(..., S, S) transition matrices: up one level with probability ``p`` (...), else down one, clipped."""
    p = np.asarray(p, dtype=float)
    s = np.arange(n_states)
    up, down = np.minimum(s + 1, n_states - 1), np.maximum(s - 1, 0)
    out = np.zeros((*p.shape, n_states, n_states))
    out[..., s, up] = p[..., None]
    out[..., s, down] = 1.0 - p[..., None]
    return out


def birth_death_arms(
    p_passive: list[float] | np.ndarray,
    p_active: list[float] | np.ndarray,
    rewards: list[list[float]] | np.ndarray,
    init_prob: float = 0.2,
    train_init_prob: float = 0.5,
    horizon: int = 20,
) -> Arms:
    """The benchmark's arms in the general model: 4 states, passive/active, reward on arrival, initial state 1
    with probability ``init_prob`` (``train_init_prob`` in training), else 0."""
    return Arms(**_birth_death_fields(p_passive, p_active, rewards, init_prob, train_init_prob, horizon))


def _birth_death_fields(
    p_passive: list[float] | np.ndarray,
    p_active: list[float] | np.ndarray,
    rewards: list[list[float]] | np.ndarray,
    init_prob: float,
    train_init_prob: float,
    horizon: int,
) -> dict[str, Any]:
    p = np.stack([np.asarray(p_passive, dtype=float), np.asarray(p_active, dtype=float)], axis=1)
    init = lambda q: np.tile([1.0 - q, q, 0.0, 0.0], (len(p), 1)).tolist()  # noqa: E731
    return {
        "transitions": birth_death_matrices(p).tolist(),
        "arrival_rewards": np.asarray(rewards, dtype=float).tolist(),
        "initial": init(init_prob),
        "train_initial": init(train_init_prob),
        "horizon": horizon,
    }


def random_arms(
    n_arms: int, n_states: int = 3, n_levels: int = 1, seed: int = 0, horizon: int = 20, sparsity: float = 0.3
) -> Arms:
    """Random heterogeneous arms for experiments: ``n_states`` states each, actions 0..``n_levels``; higher
    levels push the arm up (transition rows drawn from a Dirichlet, tilted towards higher states by the level,
    a ``sparsity`` share of moves removed), arrival rewards increasing in the state, start in state 0."""
    if n_arms < 1 or n_states < 2 or n_levels < 1:
        raise ValueError("n_arms: at least 1 arm, 2 states and 1 level are required")
    if not 0.0 <= sparsity < 1.0:
        raise ValueError("sparsity: must lie in [0, 1)")
    rng = np.random.default_rng(seed)
    S, A = n_states, n_levels + 1
    tilt = np.exp(np.arange(A)[:, None, None] * np.linspace(-1.0, 1.0, S)[None, None, :])  # (A, 1, S)
    P = rng.dirichlet(np.ones(S), size=(n_arms, A, S)) * tilt
    P[rng.uniform(size=P.shape) < sparsity] = 0.0
    P[..., np.arange(S), np.arange(S)] += 1e-3  # every row keeps its own state possible
    P /= P.sum(-1, keepdims=True)
    rewards = np.sort(rng.uniform(0.0, 1.0, (n_arms, S)), axis=1) * rng.uniform(1.0, 5.0, (n_arms, 1))
    initial = np.zeros((n_arms, S))
    initial[:, 0] = 1.0
    return Arms(transitions=P.tolist(), arrival_rewards=rewards.tolist(), initial=initial.tolist(), horizon=horizon)
