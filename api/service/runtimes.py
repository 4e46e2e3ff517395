"""In-memory bandit sessions built from their stored configuration: select and apply feedback.

A runtime's learnt state is a deterministic function of its configuration, the ordered feedback log and the
random-generator state after the last selection, which is how :mod:`api.service.sessions` restores it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from bandits.combinatorial import CUCB, CombinatorialThompson, KnapsackOracle, TopKOracle
from bandits.combinatorial.oracles.base import Oracle
from bandits.combinatorial.scalar_feedback import ScalarFeedback
from bandits.persistence import rng_from_state, rng_state
from scenarios.errors import InvalidInputError

KNAPSACK_SECONDS = 2.0  # solver time limit of one knapsack selection by MILP (fractional sizes, large tables)


def finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


class Runtime:
    """Common interface; ``lock`` serialises every use of one session within a process. ``feedback_seq`` is the
    sequence number of the last feedback row applied (rows are applied in sequence order, so another worker
    process's feedback is caught up by applying the rows after it)."""

    kind: str
    n_arms: int
    learns = True  # feedback changes later selections
    uses_rng = True  # selections draw from a generator whose state is stored with each selection

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.selections = 0
        self.feedback = 0
        self.feedback_seq = 0

    def select(self, states: list[int] | None, time_to_go: int | None) -> tuple[dict, dict, dict | None]:
        """(public result: action, propensity, exact; audit extras; rng state after) for one selection."""
        raise NotImplementedError

    def apply(self, action: np.ndarray, request: dict, selection: dict | None = None) -> list[float | None]:
        """Validate then apply one feedback for ``action`` (``selection``: the stored selection response, with
        its ``audit``); returns the per-arm rewards applied."""
        raise NotImplementedError

    def set_rng(self, state: dict | None) -> None:
        """Restore the random generator after a replay."""

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def cache(self) -> dict | None:
        """Derived data worth storing once (e.g. Whittle indices), or None."""
        return None

    def public_config(self, config: dict) -> dict:
        return config


class SemiBanditRuntime(Runtime):
    """CUCB or combinatorial Thompson sampling over a top-k or knapsack oracle, with scalar feedback."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.kind = config["kind"]
        n = self.n_arms = int(config["n_arms"])
        c = config["constraint"]
        if c["type"] == "top_k":
            if c["k"] > n:
                raise InvalidInputError("constraint.k", f"must be at most n_arms = {n}")
            oracle: Oracle = TopKOracle(n, c["k"], c.get("allow_fewer", False))
            samples = 32
        else:
            if len(c["sizes"]) != n:
                raise InvalidInputError("constraint.sizes", f"expected {n} sizes (one per arm)")
            knapsack = KnapsackOracle(c["sizes"], c["capacity"], time_limit=KNAPSACK_SECONDS)
            oracle, samples = knapsack, 32 if knapsack.use_dp and n * (knapsack.capacity + 1) <= 200_000 else 0
        low, high = (float(v) for v in config["reward_range"])
        if not high > low:
            raise InvalidInputError("reward_range", "expected [low, high] with high > low")
        self.policy, clip = SEMI_BANDITS[self.kind](config, oracle, (low, high), samples)
        self.scalar = ScalarFeedback(n, config["scalar_feedback"]["learning_rate"], clip)

    def select(self, states: list[int] | None, time_to_go: int | None) -> tuple[dict, dict, dict | None]:
        if states is not None or time_to_go is not None:
            raise InvalidInputError("states", f"{self.kind} sessions take no states")
        sel = self.policy.select()
        self.selections += 1
        public = {
            "action": [int(v) for v in sel.action],
            "round": int(sel.round),
            "propensity": finite_or_none(sel.propensity),
            "exact": bool(sel.exact),
        }
        extras = {
            "scores": [finite_or_none(v) for v in sel.scores],
            "marginals": [finite_or_none(v) for v in sel.marginals],
        }
        return public, extras, rng_state(self.policy.rng)

    def apply(self, action: np.ndarray, request: dict, selection: dict | None = None) -> list[float | None]:
        chosen = action > 0
        if request.get("next_states") is not None:
            raise InvalidInputError("next_states", f"{self.kind} sessions take no next_states")
        if request.get("rewards") is not None:
            r = request["rewards"]
            if len(r) != self.n_arms:
                raise InvalidInputError("rewards", f"expected {self.n_arms} entries (one per arm)")
            missing = [i for i in np.flatnonzero(chosen) if r[i] is None]
            if missing:
                raise InvalidInputError(f"rewards.{missing[0]}", "a chosen arm needs a reward")
            rewards = np.array([np.nan if v is None else float(v) for v in r])
            rewards[~chosen] = np.nan
            if (
                isinstance(self.policy, CombinatorialThompson)
                and self.policy.likelihood == "bernoulli"
                and (np.any(rewards[chosen] < 0) or np.any(rewards[chosen] > 1))
            ):
                raise InvalidInputError("rewards", "Bernoulli Thompson sampling needs rewards in [0, 1]")
        else:
            rewards = self.scalar.split(action, float(request["reward"]))
        self.policy.update(action, np.where(chosen, rewards, 0.0))
        self.feedback += 1
        return [None if not c else float(v) for c, v in zip(chosen, rewards, strict=True)]

    def set_rng(self, state: dict | None) -> None:
        if state is not None:
            self.policy.rng = rng_from_state(state)
        self.policy.selections = self.selections

    def state(self) -> dict[str, Any]:
        p = self.policy
        out: dict[str, Any] = {
            "rounds": int(p.rounds),
            "counts": p.counts.tolist(),
            "means": [finite_or_none(v) for v in np.where(p.counts > 0, p.sums / np.maximum(p.counts, 1), np.nan)],
            "scalar_estimates": self.scalar.theta.tolist(),
        }
        return out


#: a semi-bandit policy and the clip of its scalar feedback's per-arm estimates
SemiBanditBuild = tuple[CUCB | CombinatorialThompson, tuple[float, float] | None]


def _cucb(config: dict, oracle: Oracle, reward_range: tuple[float, float], samples: int) -> SemiBanditBuild:
    policy = CUCB(oracle, config["alpha"], reward_range, config["seed"], config["epsilon"], samples)
    return policy, reward_range


def _thompson(config: dict, oracle: Oracle, reward_range: tuple[float, float], samples: int) -> SemiBanditBuild:
    prior = tuple(config["prior"])
    policy = CombinatorialThompson(
        oracle, config["likelihood"], prior, config["sigma"], config["seed"], config["epsilon"], samples
    )
    return policy, (0.0, 1.0) if config["likelihood"] == "bernoulli" else None


#: semi-bandit session kind -> (policy, clip of the scalar feedback's per-arm estimates) from the session config
SEMI_BANDITS: dict[str, Callable[[dict, Oracle, tuple[float, float], int], SemiBanditBuild]] = {
    "cucb": _cucb,
    "thompson": _thompson,
}


def build_runtime(
    config: dict, cache: dict | None = None, deadline: float | None = None, max_bytes: int | None = None
) -> Runtime:
    """The session's runtime (by ``config["kind"]``, a key of :data:`RUNTIMES`); ``deadline`` / ``max_bytes``
    bound a Whittle session's index computation."""
    if config["kind"] not in RUNTIMES:
        raise InvalidInputError("kind", f"unknown session kind {config['kind']!r}; known: {', '.join(RUNTIMES)}")
    return RUNTIMES[config["kind"]](config, cache, deadline, max_bytes)


def _whittle(config: dict, cache: dict | None, deadline: float | None, max_bytes: int | None) -> Runtime:
    from api.service.restless_runtimes import WhittleRuntime  # here: that module builds on Runtime

    return WhittleRuntime(config, cache, deadline, max_bytes)


def _learning_whittle(config: dict, cache: dict | None, deadline: float | None, max_bytes: int | None) -> Runtime:
    from api.service.restless_runtimes import LearningWhittleRuntime

    return LearningWhittleRuntime(config)


def _semi_bandit(config: dict, cache: dict | None, deadline: float | None, max_bytes: int | None) -> Runtime:
    return SemiBanditRuntime(config)


#: session kind -> runtime factory (config, cache, deadline, max_bytes); the session kinds the service offers
RUNTIMES: dict[str, Callable[[dict, dict | None, float | None, int | None], Runtime]] = {
    "whittle": _whittle,
    "learning_whittle": _learning_whittle,
    **dict.fromkeys(SEMI_BANDITS, _semi_bandit),
}
