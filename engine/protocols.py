"""The contracts between Redwood's parts: one :class:`Policy` and the extension points.

Every policy (a trained DQN :class:`~engine.engine.Engine`, an
:class:`~engine.dnc.agent.ActorCriticAgent`, a :class:`~engine.planners.policy.PlannerPolicy`, a restless bandit
policy behind :class:`~engine.bandit_policy.BanditPolicy`) decides through ``decide`` / ``decide_batch``
and returns :class:`~engine.decision.Decision`; checkpoints are loaded by kind through
:mod:`engine.policy_kinds`, not by a classmethod of the policy.

The extension points (a scenario instance, an integer-box environment, a selector, a MILP back-end, a
bandit oracle) are what a plug-in implements (see :mod:`engine.plugins`); each registry holds classes or
factories that satisfy them. All are ``runtime_checkable``: ``isinstance`` checks that the members exist
(not their signatures).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym

    from engine.decision import Decision
    from engine.sequoia.state_q import StateQ
    from solvers.milp import MatrixMILP
    from solvers.solution import Solution


@runtime_checkable
class Policy(Protocol):
    """Decides states: ``decide(state, selector=..., time_limit=...) -> Decision``.

    ``kind`` names its checkpoint kind (:data:`engine.policy_kinds.POLICY_KINDS`), ``selectors`` the selector
    names ``decide`` accepts (the first is the default), ``policy_version`` a digest of what decides."""

    @property
    def kind(self) -> str: ...

    @property
    def selectors(self) -> tuple[str, ...]: ...

    @property
    def policy_version(self) -> str: ...

    def decide(self, state: Any, selector: str = ..., time_limit: float | None = None) -> Decision: ...

    def decide_batch(self, states: Any, selector: str = ..., time_limit: float | None = None) -> list[Decision]: ...

    def save(self, path: str | Path) -> Path: ...


@runtime_checkable
class VectorisedBatches(Protocol):
    """A policy that can say whether ``decide_batch`` decides a selector's batches at once (one vectorised call)
    rather than state by state: the REST batch route and lock-step evaluation use it to batch whole requests and
    episodes (Engine, PlannerPolicy)."""

    def vectorises(self, selector: str) -> bool: ...


@runtime_checkable
class ScenarioInstance(Protocol):
    """A scenario's instance: plain data (pydantic) that generates, validates and builds its environment.

    ``generate(**params)`` is a classmethod (the CLI's and the service's generator parameters);
    ``make_env(training)`` returns a gymnasium environment with ``scenario`` and ``instance`` attributes
    (allocation families also offer ``action_model()`` and ``split_observation(state)``)."""

    @classmethod
    def generate(cls, *args: Any, **kwargs: Any) -> ScenarioInstance: ...

    def make_env(self, training: bool = False) -> gym.Env: ...

    def model_dump(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...


@runtime_checkable
class IntegerBoxEnvironment(Protocol):
    """An environment whose action is an integer vector in a box, trained by the actor-critic
    (:class:`scenarios.boxes.env.IntegerBoxEnv` gives every hint a default)."""

    action_space: gym.Space
    observation_space: gym.Space

    @property
    def instance(self) -> Any: ...

    def observation_scale(self) -> tuple[np.ndarray, np.ndarray]: ...

    def reward_scale_hint(self) -> float: ...

    def potential_weights(self) -> np.ndarray | None: ...


@runtime_checkable
class Selector(Protocol):
    """Maximises Q(s, .) over the feasible set: ``select(state_q, time_limit) -> Decision``; constructed with
    its options as keyword arguments (``SELECTORS[name](**options)``)."""

    def select(self, state_q: StateQ, time_limit: float | None = None) -> Decision: ...


@runtime_checkable
class MilpBackend(Protocol):
    """A MILP solver: ``solve(milp, time_limit=, mip_rel_gap=, warm_start=) -> Solution``."""

    def solve(self, milp: MatrixMILP, *args: Any, **kwargs: Any) -> Solution: ...


@runtime_checkable
class BanditOracle(Protocol):
    """The combinatorial oracle of a semi-bandit: the best feasible action for per-arm weights."""

    n_arms: int

    def solve(self, weights: object) -> Any: ...

    def is_feasible(self, action: np.ndarray) -> bool: ...


@runtime_checkable
class FeasibleSet(Protocol):
    """What selectors and planners need of a feasible set (:class:`scenarios.action_model.ActionModel`)."""

    n_actions: int

    def is_feasible(self, a: np.ndarray) -> bool: ...

    def check(self, a: np.ndarray) -> None: ...


def batch_rows(states: Any) -> Sequence[Any]:
    """The rows of a batch of states (a list of states or a 2-D array), refused naming ``states`` otherwise."""
    from scenarios.errors import InvalidInputError

    if isinstance(states, np.ndarray):
        if states.ndim != 2:
            raise InvalidInputError("states", f"expected a list of states, got shape {states.shape}")
        return list(states)
    if not isinstance(states, (list, tuple)) or not states:
        raise InvalidInputError("states", "expected a non-empty list of states")
    return list(states)


__all__ = [
    "BanditOracle",
    "FeasibleSet",
    "IntegerBoxEnvironment",
    "MilpBackend",
    "Policy",
    "ScenarioInstance",
    "Selector",
    "batch_rows",
]
