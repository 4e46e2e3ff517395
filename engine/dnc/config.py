"""Every hyperparameter of the actor-critic's training and of its decision-time search, in one dataclass."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from engine.sequoia.residual_prior import PRIORS
from scenarios.errors import InvalidInputError
from solvers.backends.registry import NETWORK_BACKENDS
from solvers.search.neighbourhood import NeighbourhoodConfig

#: how training turns the actor's proxy into an action: as is, or improved by the neighbourhood search
TRAIN_SELECTORS = ("minmax", "neighbourhood")


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidInputError(name, f"expected an integer >= {low}, got {value!r}")


@dataclass
class ActorCriticConfig:
    """All hyperparameters of training and of decision-time search."""

    # ---- training
    total_steps: int = 20_000  # environment transitions, summed over the parallel environments
    num_envs: int = 4
    learning_starts: int = 2_000  # uniform random proxies before this many transitions
    buffer_size: int = 200_000
    batch_size: int = 256
    updates_per_iteration: int = 4  # gradient steps per vector step (num_envs transitions)
    policy_frequency: int = 2  # actor and target updates every this many critic updates
    gamma: float = 0.9
    tau: float = 0.02
    actor_lr: float = 1e-3
    critic_lr: float = 3e-3
    exploration_noise: float = 0.1  # Gaussian std on the proxy in [-1, 1]
    saturation_penalty: float = 0.1  # weight of mean(logit^2) in the actor loss (keeps tanh unsaturated)
    twin_critic: bool = False  # clipped double-Q targets (TD3); decisions use the first critic
    target_noise: float = 0.1  # smoothing noise on the target proxy (clipped at 2.5x)
    reward_scale: float | None = None  # None: the env's reward_scale_hint(), else 1
    train_selector: str = "neighbourhood"  # minmax | neighbourhood
    train_search_steps: int | None = None  # None: the decision-time search (train what you deploy)
    # ---- residual prior and trust region (engine/sequoia/residual_prior.py)
    prior: str = "none"  # none (proxy spans the box) | base_stock (residual around tuned base-stock; inventory)
    residual_radius: float = 10.0  # with a prior: the action stays within +- this many units of it
    search_margin: float = 0.0  # accept a search answer only if every critic gains > margin * |Q(MinMax)|
    shaping: bool = False  # potential-based reward shaping with the env's potential_weights() (if it has one)
    reward_model: bool = False  # Q = exact expected step reward (env.reward_model) + learned continuation
    action_weight_decay: float = 0.0  # L2 weight on the critic's action layer: slopes in a need evidence
    post_decision: bool = False  # with reward_model: the continuation is W(y) of the post-order levels only
    expected_target: bool = True  # with reward_model: regress C on gamma Q'(s', a') (drop the reward's noise)
    # ---- networks
    actor_hidden: tuple[int, ...] = (64, 64)
    state_hidden: tuple[int, ...] = (64,)  # critic's state encoder before the action layer
    action_hidden: int = 32  # the hidden layer the scaled action enters linearly
    value_head: bool = True  # a state-value offset v(s) beside the action layer
    # ---- decision-time search (its seed is overwritten by ``seed``)
    search: NeighbourhoodConfig = field(default_factory=lambda: NeighbourhoodConfig(steps=15))
    mip_time_limit: float = 10.0
    mip_rel_gap: float = 1e-4
    mip_backend: str = "highs"  # the exact MILP's back-end (a name in solvers.backends.registry.BACKENDS)
    seed: int = 0

    def __post_init__(self) -> None:
        """Refuse values training or deciding would fail on later (or silently ignore), naming the field."""
        for name in ("total_steps", "num_envs", "buffer_size", "batch_size", "updates_per_iteration"):
            _check_int(name, getattr(self, name), 1)
        _check_int("policy_frequency", self.policy_frequency, 1)
        _check_int("learning_starts", self.learning_starts, 0)
        _check_int("action_hidden", self.action_hidden, 1)
        if self.train_selector not in TRAIN_SELECTORS:
            raise InvalidInputError("train_selector", f"expected one of {TRAIN_SELECTORS}, got {self.train_selector!r}")
        if self.prior not in PRIORS:
            raise InvalidInputError("prior", f"expected one of {PRIORS}, got {self.prior!r}")
        if self.mip_backend not in NETWORK_BACKENDS:
            raise InvalidInputError(
                "mip_backend",
                f"expected a back-end that takes continuous columns {NETWORK_BACKENDS}, got {self.mip_backend!r}",
            )
        if self.reward_scale is not None and not (isinstance(self.reward_scale, int | float) and self.reward_scale > 0):
            raise InvalidInputError("reward_scale", f"expected a positive number or None, got {self.reward_scale!r}")
        for name in ("mip_time_limit", "tau"):
            if not getattr(self, name) > 0:
                raise InvalidInputError(name, f"must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.gamma <= 1:
            raise InvalidInputError("gamma", f"must lie in [0, 1], got {self.gamma!r}")
        if not self.mip_rel_gap >= 0:
            raise InvalidInputError("mip_rel_gap", f"must be >= 0, got {self.mip_rel_gap!r}")

    def search_config(self, steps: int | None = None) -> NeighbourhoodConfig:
        return replace(self.search, steps=self.search.steps if steps is None else steps, seed=self.seed)

    @classmethod
    def from_dict(cls, data: dict) -> ActorCriticConfig:
        known = {f.name for f in fields(cls)}
        kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
        if isinstance(kw.get("search"), dict):
            kw["search"] = NeighbourhoodConfig(**kw["search"])
        return cls(**kw)
