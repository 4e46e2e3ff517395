"""Restless bandit sessions: Whittle-index allocation under a budget (``whittle``, indices computed in chunks
of arms within the request's deadline and memory) and the learning variant that re-plans from a pooled
Dirichlet posterior updated by feedback (``learning_whittle``). The session contract is
:class:`api.service.runtimes.Runtime`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from api.service.limits import chunk_arms, deadline_passed
from api.service.runtimes import Runtime
from bandits.persistence import rng_from_state, rng_state
from bandits.restless import RestlessArms, WhittleIndices, WhittlePolicy, whittle_indices
from bandits.restless.allocation import allocate
from bandits.restless.learning import LearningWhittlePolicy
from scenarios.errors import InvalidInputError
from scenarios.estimation import Pooling, estimate_dynamics


class WhittleRuntime(Runtime):
    """Whittle index allocation over restless arms given as data (a planning policy: feedback is logged)."""

    kind = "whittle"
    learns = False
    uses_rng = False

    def __init__(
        self, config: dict, cache: dict | None, deadline: float | None = None, max_bytes: int | None = None
    ) -> None:
        """``deadline`` (``time.perf_counter()``) and ``max_bytes`` bound the index computation (see
        :func:`chunked_whittle_indices`)."""
        super().__init__()
        arms = RestlessArms.parse(config["arms"])
        self.n_arms, self.n_states = arms.n_arms, arms.n_states
        if cache is not None:
            raw = np.array(cache["raw"], dtype=float)
            ok = np.array(cache["indexable"], dtype=bool)
            values = raw.copy()
            values[~ok] = np.nan
            idx = WhittleIndices(values, raw, ok, float(config["discount"]), config["horizon"], 0.0, 0)
        else:
            idx = chunked_whittle_indices(arms, float(config["discount"]), config["horizon"], deadline, max_bytes)
        self.policy = WhittlePolicy(
            arms,
            config["budget"],
            config["discount"],
            config["horizon"],
            config["fill_budget"],
            config["allow_non_indexable"],
            indices=idx,
        )
        self._table = idx.raw if config["allow_non_indexable"] else idx.values
        self._arm = np.arange(self.n_arms)
        self._costs = arms.arrays()[2]

    def cache(self) -> dict | None:
        return {"raw": _nan_list(self.policy.indices.raw.tolist()), "indexable": self.policy.indices.indexable.tolist()}

    def select(self, states: list[int] | None, time_to_go: int | None) -> tuple[dict, dict, dict | None]:
        if states is None:
            raise InvalidInputError("states", "whittle sessions need the arm states")
        if len(states) != self.n_arms:
            raise InvalidInputError("states", f"expected {self.n_arms} entries (one per arm)")
        if self.policy.horizon is None and time_to_go is not None:
            raise InvalidInputError("time_to_go", "this session has an infinite horizon")
        s = np.asarray(states, dtype=np.int64)  # integers in [0, 1000] by the request schema
        if s.max() >= self.n_states:
            raise InvalidInputError("states", f"arm states must lie in [0, {self.n_states - 1}]")
        if self.policy.horizon is None:
            scores = self._table[self._arm, s]
        else:
            if time_to_go is None or time_to_go > self.policy.horizon:
                raise InvalidInputError("time_to_go", f"expected an integer in [1, {self.policy.horizon}]")
            scores = self._table[self._arm, time_to_go - 1, s]
        # the same allocation as WhittlePolicy.select, without re-validating the states twice
        action = allocate(scores, self._costs, self.policy.budget, fill=self.policy.fill_budget)
        # no round number here: the database numbers Whittle selections (api.service.selection_log)
        public = {"action": action.tolist(), "propensity": 1.0, "exact": False}
        return public, {}, None  # the states are in the logged request

    def apply(self, action: np.ndarray, request: dict, selection: dict | None = None) -> list[float | None]:
        nxt = request.get("next_states")
        if nxt is not None and (len(nxt) != self.n_arms or max(nxt) >= self.n_states):
            raise InvalidInputError("next_states", f"expected {self.n_arms} states in [0, {self.n_states - 1}]")
        if request.get("rewards") is not None:
            r = request["rewards"]
            if len(r) != self.n_arms:
                raise InvalidInputError("rewards", f"expected {self.n_arms} entries (one per arm)")
            applied = [None if v is None else float(v) for v in r]
        else:
            applied = [float(request["reward"])]
        self.feedback += 1
        return applied

    def state(self) -> dict[str, Any]:
        return {
            "budget": self.policy.budget,
            "discount": self.policy.discount,
            "horizon": self.policy.horizon,
            "n_states": self.n_states,
            "non_indexable": self.policy.indices.non_indexable.tolist(),
        }

    def public_config(self, config: dict) -> dict:
        return {k: v for k, v in config.items() if k != "arms"} | {"n_states": self.n_states}


class LearningWhittleRuntime(Runtime):
    """Whittle allocation on dynamics learnt from a log's counts (a pooled Dirichlet posterior) and from every
    feedback: the selection's arm states, its action and the feedback's ``next_states`` are added to the counts
    (:class:`bandits.restless.learning.LearningWhittlePolicy` with a ``DynamicsPosterior``). Every selection
    re-plans (Whittle indices of a posterior draw, or of the mean plus a bonus), so the session's state is its
    configuration, the feedback log and the generator state of the last selection, as the service restores it."""

    kind = "learning_whittle"

    def __init__(self, config: dict) -> None:
        super().__init__()
        spec = config["posterior"]
        counts = np.asarray(spec["counts"], dtype=float)
        if counts.ndim != 4 or counts.shape[-1] != counts.shape[-2]:
            raise InvalidInputError("posterior.counts", f"expected (arms, actions, states, states), got {counts.shape}")
        pooling = None
        if spec.get("pooling") is not None:
            pool = spec["pooling"]
            clusters = np.asarray(pool["clusters"], dtype=np.int64)
            pooling = Pooling(
                clusters,
                pool_strength=pool["pool_strength"],
                max_pool_strength=pool["max_pool_strength"],
                centre=pool.get("centre", "inverse_variance"),
            )
        posterior = estimate_dynamics(counts, spec["prior_strength"], pooling)
        rewards = config["rewards"] if config["rewards"] is not None else config["arrival_rewards"]
        self.policy = LearningWhittlePolicy(
            np.asarray(rewards, dtype=float),
            config["budget"],
            counts.shape[1],
            None if config["costs"] is None else np.asarray(config["costs"], dtype=float),
            config["discount"],
            config["horizon"],
            config["method"],
            bonus=config["bonus"],
            fill_budget=config["fill_budget"],
            seed=config["seed"],
            posterior=posterior,
        )
        self.n_arms, self.n_states = self.policy.n_arms, self.policy.n_states
        self.log_records = int(counts.sum())

    def select(self, states: list[int] | None, time_to_go: int | None) -> tuple[dict, dict, dict | None]:
        if states is None:
            raise InvalidInputError("states", "learning_whittle sessions need the arm states")
        horizon = self.policy.horizon
        if horizon is not None and (time_to_go is None or time_to_go > horizon):
            raise InvalidInputError("time_to_go", f"expected an integer in [1, {horizon}]")
        if horizon is None and time_to_go is not None:
            raise InvalidInputError("time_to_go", "this session has an infinite horizon")
        action = self.policy.select(np.asarray(states, dtype=np.int64), time_to_go)
        self.selections += 1
        public = {"action": [int(v) for v in action], "round": self.selections, "propensity": None, "exact": False}
        return public, {"states": [int(v) for v in states]}, rng_state(self.policy.rng)

    def apply(self, action: np.ndarray, request: dict, selection: dict | None = None) -> list[float | None]:
        nxt = request.get("next_states")
        if nxt is None:
            raise InvalidInputError("next_states", "learning_whittle feedback needs the arms' next states")
        if len(nxt) != self.n_arms or max(nxt) >= self.n_states:
            raise InvalidInputError("next_states", f"expected {self.n_arms} states in [0, {self.n_states - 1}]")
        if selection is None or "states" not in selection.get("audit", {}):
            raise InvalidInputError("selection_id", "the decision's arm states are not recorded")
        if request.get("rewards") is not None:
            if len(request["rewards"]) != self.n_arms:
                raise InvalidInputError("rewards", f"expected {self.n_arms} entries (one per arm)")
            applied = [None if v is None else float(v) for v in request["rewards"]]
        else:
            applied = [float(request["reward"])]
        self.policy.update(np.asarray(selection["audit"]["states"]), action, np.asarray(nxt))
        self.feedback += 1
        return applied

    def set_rng(self, state: dict | None) -> None:
        if state is not None:
            self.policy.rng = rng_from_state(state)

    def state(self) -> dict[str, Any]:
        posterior = self.policy.posterior
        assert posterior is not None
        strengths = posterior.pool_strengths
        return {
            "log_records": self.log_records,
            "feedback_records": int(self.policy.counts.sum()) - self.log_records,
            "pool_strengths": None if strengths is None else strengths[:, 0, 0].tolist(),
            "budget": self.policy.budget,
            "method": self.policy.method,
            "n_states": self.n_states,
        }

    def public_config(self, config: dict) -> dict:
        return {k: v for k, v in config.items() if k != "posterior"} | {
            "n_states": self.n_states,
            "posterior": {k: v for k, v in config["posterior"].items() if k != "counts"}
            | {"records": self.log_records},
        }


def _nan_list(x):
    if isinstance(x, list):
        return [_nan_list(v) for v in x]
    return x if np.isfinite(x) else None


def chunked_whittle_indices(
    arms: RestlessArms,
    discount: float,
    horizon: int | None,
    deadline: float | None = None,
    max_bytes: int | None = None,
) -> WhittleIndices:
    """:func:`whittle_indices` computed over chunks of arms (each arm's indices and indexability are independent
    of the others): a chunk's memory stays under ``max_bytes`` by the estimate of :mod:`api.service.limits`,
    and past ``deadline`` (checked between chunks) the work stops with 422 ``too_expensive``."""
    P, R, C, _ = arms.arrays()
    N, A, S, _ = P.shape
    chunk = chunk_arms(A, S, horizon, max_bytes or 2**62)
    if chunk >= N and deadline is None:
        return whittle_indices((P, R, C), discount, horizon)
    parts: list[WhittleIndices] = []
    start = time.perf_counter()
    for lo in range(0, N, chunk):
        deadline_passed(deadline, f"computing the Whittle indices ({lo} of {N} arms done)", "arms")
        parts.append(whittle_indices((P[lo : lo + chunk], R[lo : lo + chunk], C[lo : lo + chunk]), discount, horizon))
    deadline_passed(deadline, "computing the Whittle indices", "arms")
    return WhittleIndices(
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.raw for p in parts]),
        np.concatenate([p.indexable for p in parts]),
        parts[0].discount,
        parts[0].horizon,
        time.perf_counter() - start,
        max(p.probes for p in parts),
    )
