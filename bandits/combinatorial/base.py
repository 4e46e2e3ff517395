"""Common machinery of combinatorial semi-bandit policies.

``select(contexts=None) -> Selection`` scores the base arms (optimistically or by sampling), optionally
explores with probability ``epsilon`` by uniform random weights, and asks the oracle for the best super
arm. ``update(actions, rewards, contexts=None)`` takes one round (arms,) or a batch (rounds, arms); rewards
of arms that were not chosen are ignored (NaN is fine there). All randomness comes from one seeded
Generator whose state is saved, so select/update are deterministic given the seed and the history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from bandits.combinatorial.oracles import Oracle, oracle_from_state
from bandits.combinatorial.selection import Selection
from bandits.persistence import load_state, make_rng, rng_from_state, rng_state, save_state
from bandits.validation import as_float_array, check_positive
from scenarios.errors import InvalidInputError


class SemiBanditPolicy:
    kind: ClassVar[str] = "semi_bandit"
    stochastic: ClassVar[bool] = False  # whether the scores are sampled (Thompson) or deterministic (UCB)
    contextual: ClassVar[bool] = False
    dim: int  # feature dimension of the per-arm contexts; set by contextual policies only

    def __init__(self, oracle: Oracle, seed: int = 0, epsilon: float = 0.0, propensity_samples: int = 32) -> None:
        if not isinstance(oracle, Oracle):
            raise InvalidInputError("oracle", f"expected an Oracle, got {type(oracle).__name__}")
        self.oracle = oracle
        self.seed = seed
        self.rng = make_rng(seed)
        self.epsilon = check_positive(epsilon, "epsilon", allow_zero=True)
        if self.epsilon > 1:
            raise InvalidInputError("epsilon", "must lie in [0, 1]")
        if int(propensity_samples) != propensity_samples or propensity_samples < 0:
            raise InvalidInputError("propensity_samples", "expected a non-negative integer")
        self.propensity_samples = int(propensity_samples)
        self.rounds = 0  # completed update rounds
        self.selections = 0

    @property
    def n_arms(self) -> int:
        return self.oracle.n_arms

    # ------------------------------------------------------------------------------- to implement
    def _scores(self, contexts: np.ndarray | None, n: int | None) -> np.ndarray:
        """Scores (arms,) when ``n`` is None, else n independent draws (n, arms) (stochastic policies)."""
        raise NotImplementedError

    def _update(self, mask: np.ndarray, rewards: np.ndarray, contexts: np.ndarray | None) -> None:
        """mask (rounds, arms) bool of observed arms, rewards (rounds, arms), contexts (rounds, arms, d)."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def _get(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        raise NotImplementedError

    def _set(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- selection
    def check_contexts(self, contexts: object, batch: bool = False) -> np.ndarray | None:
        if not self.contextual:
            if contexts is not None:
                raise InvalidInputError("contexts", f"{self.kind} takes no contexts")
            return None
        if contexts is None:
            raise InvalidInputError("contexts", f"{self.kind} needs per-arm features")
        return self._context_array(contexts, batch)

    def _given(self, contexts: np.ndarray | None) -> np.ndarray:
        """The checked contexts a contextual policy's ``_scores`` / ``_update`` receive (never None there)."""
        if contexts is None:
            raise InvalidInputError("contexts", f"{self.kind} needs per-arm features")
        return contexts

    def _context_array(self, contexts: object, batch: bool) -> np.ndarray:
        """Per-arm features of a contextual policy as (arms, dim), or (rounds, arms, dim) when ``batch``."""
        shape = (None, self.n_arms, self.dim) if batch else (self.n_arms, self.dim)
        return as_float_array(contexts, "contexts", shape)

    def select(self, contexts: object = None) -> Selection:
        x = self.check_contexts(contexts)
        explore = self.epsilon > 0 and self.rng.uniform() < self.epsilon
        scores = self.rng.uniform(size=self.n_arms) if explore else self._scores(x, None)
        result = self.oracle.solve(scores)
        prop, marg, n_mc = self._propensity(result.action, x)
        self.selections += 1
        params = {
            "method": self.kind,
            "epsilon": self.epsilon,
            "explored": bool(explore),
            "propensity_samples": n_mc,
        } | self._params()
        return Selection(result.action, scores, prop, marg, result.exact, self.rounds, params)

    def _propensity(self, action: np.ndarray, x: np.ndarray | None) -> tuple[float, np.ndarray, int]:
        """P(action) and arm marginals of the mixture (1 - eps) * policy + eps * uniform-weights law."""
        n = self.propensity_samples
        if self.stochastic:
            if n == 0:
                p_pol, m_pol, used = float("nan"), np.full(self.n_arms, np.nan), 0
            else:
                acts = self.oracle.solve_batch(self._scores(x, n))
                same = np.all(acts == action, axis=1)
                p_pol, m_pol, used = (1.0 + same.sum()) / (n + 1.0), (action + acts.sum(0)) / (n + 1.0), n
        else:
            greedy = self.oracle.solve(self._scores(x, None)).action if self.epsilon > 0 else action
            p_pol, m_pol, used = float(np.array_equal(greedy, action)), greedy.astype(float), 0
        if self.epsilon == 0:
            return p_pol, m_pol, used
        law = self.oracle.exploration_law(action)
        if law is None:
            if n == 0:
                return float("nan"), np.full(self.n_arms, np.nan), used
            acts = self.oracle.solve_batch(self.rng.uniform(size=(n, self.n_arms)))
            law = (np.all(acts == action, axis=1).mean(), acts.mean(0))
            used = max(used, n)
        e = self.epsilon
        return (1 - e) * p_pol + e * float(law[0]), (1 - e) * m_pol + e * law[1], used

    # ------------------------------------------------------------------------------------ updates
    def update(self, actions: object, rewards: object, contexts: object = None) -> None:
        """Semi-bandit feedback for one round or a batch of rounds (vectorised)."""
        a = as_float_array(actions, "actions")
        single = a.ndim == 1
        a = a[None] if single else a
        if a.ndim != 2 or a.shape[1] != self.n_arms or np.any((a != 0) & (a != 1)):
            raise InvalidInputError("actions", f"expected 0/1 rows of {self.n_arms} entries, got shape {a.shape}")
        mask = a > 0
        try:
            r = np.asarray(rewards, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError("rewards", "expected numbers") from exc
        r = r[None] if single and r.ndim == 1 else r
        if r.shape != mask.shape:
            raise InvalidInputError("rewards", f"expected one reward per arm, shape {mask.shape}, got {r.shape}")
        if not np.all(np.isfinite(r[mask])):
            raise InvalidInputError("rewards", "rewards of chosen arms must be finite")
        x = None
        if self.contextual:
            if contexts is None:
                raise InvalidInputError("contexts", f"{self.kind} needs the contexts of the updated rounds")
            x = self._context_array(np.asarray(contexts, dtype=float)[None] if single else contexts, batch=True)
            if x.shape[0] != mask.shape[0]:
                raise InvalidInputError("contexts", "one context matrix per round is required")
        self._update(mask, np.where(mask, r, 0.0), x)
        self.rounds += mask.shape[0]

    # ------------------------------------------------------------------------------- persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        o_meta, o_arrays = self.oracle.get_state()
        meta, arrays = self._get()
        meta = meta | {
            "seed": self.seed,
            "epsilon": self.epsilon,
            "propensity_samples": self.propensity_samples,
            "rounds": self.rounds,
            "selections": self.selections,
            "rng": rng_state(self.rng),
            "oracle": o_meta,
        }
        return meta, arrays | {f"oracle_{k}": v for k, v in o_arrays.items()}

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> SemiBanditPolicy:
        oracle = oracle_from_state(meta["oracle"], {k[7:]: v for k, v in arrays.items() if k.startswith("oracle_")})
        obj = cls.__new__(cls)
        SemiBanditPolicy.__init__(obj, oracle, meta["seed"], meta["epsilon"], meta["propensity_samples"])
        obj.rounds, obj.selections = int(meta["rounds"]), int(meta["selections"])
        obj.rng = rng_from_state(meta["rng"])
        obj._set(meta, arrays)
        return obj

    def save(self, path: str | Path) -> Path:
        meta, arrays = self.get_state()
        return save_state(path, self.kind, meta, arrays)

    @classmethod
    def load(cls, path: str | Path) -> SemiBanditPolicy:
        _, meta, arrays = load_state(path, cls.kind)
        return cls.from_state(meta, arrays)
