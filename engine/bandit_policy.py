"""A restless bandit policy (Whittle, Lagrangian, learning Whittle, ...: :mod:`bandits.registry`) as a
:class:`~engine.protocols.Policy`: it decides arm states through ``decide`` / ``Decision`` and saves as a
checkpoint directory that ``Engine.load`` reads like any other policy (kind ``bandit``)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from bandits.registry import bandit_class
from bandits.restless.policy import RestlessPolicy
from engine.checkpoint import read_checkpoint_meta, write_checkpoint_dir
from engine.decision import Decision
from engine.protocols import batch_rows
from scenarios.errors import InvalidInputError
from solvers.solution import HEURISTIC

#: a bandit policy allocates by its own index rule; no other selector applies
BANDIT_SELECTORS = ("index",)


class BanditPolicy:
    """Decides ``[s_1..s_J, time_to_go]`` (or the arm states alone) with a restless policy's ``select``.

    A bandit policy certifies nothing: decisions are ``heuristic`` with no value or bound."""

    kind = "bandit"
    selectors = BANDIT_SELECTORS

    def __init__(self, policy: RestlessPolicy, n_arms: int | None = None) -> None:
        """``n_arms`` defaults to the number of arms in the policy's data (a policy without arm data, e.g. a
        learning one, needs it)."""
        if not isinstance(policy, RestlessPolicy):
            raise InvalidInputError("policy", f"expected a restless bandit policy, got {type(policy).__name__}")
        self.policy = policy
        meta, arrays = policy.get_state()
        if n_arms is None:
            if "transitions" not in arrays:
                raise InvalidInputError("n_arms", f"give the number of arms of this {policy.kind} policy")
            n_arms = int(arrays["transitions"].shape[0])
        self.n_arms = int(n_arms)
        h = hashlib.sha256(json.dumps({"kind": policy.kind, **meta}, sort_keys=True, default=str).encode())
        for name in sorted(arrays):
            h.update(name.encode())
            h.update(np.ascontiguousarray(arrays[name]).tobytes())
        self.policy_version = h.hexdigest()[:12]

    def decide(self, state: object, selector: str = "index", time_limit: float | None = None) -> Decision:
        """The policy's action for ``state``; ``time_limit`` is accepted for the contract (allocation is fast)."""
        if selector not in BANDIT_SELECTORS:
            raise InvalidInputError(
                "selector", f"a bandit policy offers {', '.join(BANDIT_SELECTORS)}; got {selector!r}"
            )
        start = time.perf_counter()
        values = _integers(state)
        if values.size not in (self.n_arms, self.n_arms + 1):
            raise InvalidInputError("state", f"expected {self.n_arms} arm states, then optionally the time to go")
        ttg = int(values[-1]) if values.size == self.n_arms + 1 else None
        action = np.asarray(self.policy.select(values[: self.n_arms], ttg)).astype(np.int64)
        nan = float("nan")
        return Decision(action, nan, nan, nan, HEURISTIC, time.perf_counter() - start, selector, self.policy_version)

    def decide_batch(self, states: object, selector: str = "index", time_limit: float | None = None) -> list[Decision]:
        return [self.decide(row, selector, time_limit) for row in batch_rows(states)]

    def save(self, path: str | Path) -> Path:
        meta, arrays = self.policy.get_state()
        tensors = {name: torch.from_numpy(np.array(a, copy=True)) for name, a in arrays.items()}
        info: dict[str, Any] = {"kind": self.kind, "bandit": self.policy.kind, "n_arms": self.n_arms, "state": meta}
        return write_checkpoint_dir(path, info | {"policy_version": self.policy_version}, tensors)

    @classmethod
    def load(cls, path: str | Path) -> BanditPolicy:
        meta = read_checkpoint_meta(path)
        if meta.get("kind") != cls.kind:
            raise InvalidInputError("path", f"{path} is not a bandit checkpoint")
        arrays = {k: v.numpy() for k, v in load_file(str(Path(path) / "weights.safetensors")).items()}
        policy_class = bandit_class(meta["bandit"])
        if not issubclass(policy_class, RestlessPolicy):
            raise InvalidInputError("bandit", f"{meta['bandit']!r} is not a restless bandit policy")
        return cls(policy_class.from_state(meta["state"], arrays), meta.get("n_arms"))


def _integers(state: object) -> np.ndarray:
    """``state`` as an int64 vector, refused naming ``state`` when it is not a list of integers."""
    try:
        values = np.asarray(state, dtype=float).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError("state", f"cannot be read as integers ({exc})") from exc
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise InvalidInputError("state", "expected integers")
    return values.astype(np.int64)
