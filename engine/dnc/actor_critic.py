"""Q-actor-critic with dynamic neighbourhood construction for large integer action boxes (DNC, done right).

Reads top to bottom like pseudocode (CleanRL style); every hyperparameter is in :class:`ActorCriticConfig`.

- The actor is deterministic: ``proxy = tanh(mlp(s))`` in [-1, 1]^n. In training Gaussian noise is added to
  the proxy; at evaluation it is not.
- The critic sees SCALED actions ``a / amax`` in [0, 1]^n and the action enters ONE hidden layer linearly:
  ``Q(s, a) = v(s) + w2 . relu(U enc(s) + W (a / amax) + b1) + b2`` (``v(s)`` a state-value offset).
  Given ``s`` it is a one-hidden-layer ReLU function of ``a``: the neighbourhood search scores neighbours
  incrementally and the box MILP is small. The same scaling is used in training, search and the MILP.
- Acting: proxy -> MinMax base action (clip, rescale, round) -> neighbourhood search (simulated annealing)
  scored by the critic -> executed action = best seen.
- Learning (DDPG-style): critic regresses on ``r * reward_scale + gamma * Q'(s', minmax(actor'(s')))``
  (target networks, on-lattice target actions); the actor ascends the critic at its continuous proxy.
- Optional residual prior (``prior="base_stock"``, :mod:`engine.sequoia.residual_prior`): the proxy is a bounded
  correction ``levels + residual_radius * proxy`` to the tuned base-stock levels (zero-initialised actor head:
  the untrained agent IS base-stock), and exploration, search and MILP stay in that trust region.
  ``search_margin`` accepts the search's answer only where every critic (twin critics: both) prefers it to
  the MinMax action by more than ``search_margin * |Q(MinMax)|``.
- Optional exact reward model (``reward_model=True``; inventory): ``Q(s, a) = r(s, a) + C(s, a)`` with ``r`` the
  environment's exact expected (shaped) step reward, separable over items plus the fixed ordering charge
  (:class:`~solvers.formulations.separable_reward.SeparableReward`). The critic learns only the continuation ``C``; the
  search and the MILP maximise the sum exactly; the actor ascends ``C`` plus ``r`` interpolated between
  lattice points (without the fixed charge, a step), so only the search can decide to skip an order.
  ``expected_target`` (default): as ``r(s, a)`` is the exact mean reward, the continuation regresses on
  ``gamma Q'(s', a')`` alone. ``post_decision=True``: the continuation is ``W(y)`` of the post-order levels
  ``y = max(a, inventory)`` only (zero lead time: ``y`` determines the next state's distribution), and search
  and MILP run over ``y`` in a per-state box ``max(trust region, inventory)``.

``ActorCriticAgent.train(env, config, seed)`` returns an agent; ``agent.act(obs, selector)`` returns
``(action, info)`` with ``selector`` in ``minmax | neighbourhood | mip | hybrid``; checkpoints are a
directory with ``config.json`` and ``weights.safetensors`` (no pickle).
"""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from pydantic import ValidationError
from safetensors.torch import load_file
from torch import nn
from tqdm.auto import tqdm

from engine.checkpoint import read_checkpoint_meta, weights_digest, write_checkpoint_dir
from engine.decision import Decision
from engine.sequoia.residual_prior import ResidualPrior
from scenarios.boxes.inventory import InventoryInstance
from scenarios.errors import InvalidInputError
from solvers.formulations.box_critic_milp import BoxCriticMILP
from solvers.formulations.separable_reward import SeparableReward
from solvers.search.neighbourhood import NeighbourhoodConfig, NeighbourhoodSearch
from solvers.solution import HEURISTIC

SELECTORS = ("minmax", "neighbourhood", "mip", "hybrid")


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
    seed: int = 0

    def search_config(self, steps: int | None = None) -> NeighbourhoodConfig:
        return replace(self.search, steps=self.search.steps if steps is None else steps, seed=self.seed)

    @classmethod
    def from_dict(cls, data: dict) -> ActorCriticConfig:
        known = {f.name for f in fields(cls)}
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in known}
        if isinstance(kw.get("search"), dict):
            kw["search"] = NeighbourhoodConfig(**kw["search"])
        return cls(**kw)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class Actor(nn.Module):
    """Deterministic proxy ``tanh(mlp(s))`` in [-1, 1]^n."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...]) -> None:
        super().__init__()
        self.body = _mlp([obs_dim, *hidden])
        self.head = nn.Linear(hidden[-1] if hidden else obs_dim, n_actions)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """The proxy before tanh (penalised in training so that tanh does not saturate)."""
        return self.head(self.body(obs))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.logits(obs))


class Critic(nn.Module):
    """``Q(s, a) = v(s) + w2 . relu(c(s) + W a_scaled) + b2`` with ``a_scaled = a / amax``.

    ``c(s) = U enc(s) + b1`` and the state value ``v(s) = u . enc(s)`` share the encoder ``enc``; ``v(s)``
    is a per-state constant (it lets the 32 action units model the action's effect, not the state's value).
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        state_hidden: tuple[int, ...],
        action_hidden: int,
        value_head: bool = True,
    ) -> None:
        super().__init__()
        enc_dim = state_hidden[-1] if state_hidden else obs_dim
        self.state_net = _mlp([obs_dim, *state_hidden])
        self.state_in = nn.Linear(enc_dim, action_hidden)
        self.action_in = nn.Linear(n_actions, action_hidden, bias=False)
        self.out = nn.Linear(action_hidden, 1)
        self.value = nn.Linear(enc_dim, 1, bias=False) if value_head else None
        with torch.no_grad():  # put each unit's kink through a random point of the box, not near a = 0
            anchor = torch.rand(action_hidden, n_actions)
            self.state_in.bias.copy_(-(self.action_in.weight * anchor).sum(1))

    def state_terms(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(c(s), v(s))``: the state's constant in the action layer (B, H) and its value offset (B,)."""
        enc = self.state_net(obs)
        v = self.value(enc).squeeze(-1) if self.value is not None else torch.zeros(enc.shape[0])
        return self.state_in(enc), v

    def state_contribution(self, obs: torch.Tensor) -> torch.Tensor:
        return self.state_terms(obs)[0]

    def forward(self, obs: torch.Tensor, a_scaled: torch.Tensor) -> torch.Tensor:
        c, v = self.state_terms(obs)
        return v + self.out(torch.relu(c + self.action_in(a_scaled))).squeeze(-1)

    def action_layer(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(W, w2, b2)``: W (H, n) on the scaled action, output weights (H,), output bias."""
        return self.action_in.weight.detach(), self.out.weight.detach()[0], float(self.out.bias.detach()[0])


def _reward_source(instance) -> InventoryInstance:
    """The instance whose exact expected step reward backs ``reward_model=True`` (inventory instances)."""
    if isinstance(instance, InventoryInstance):
        return instance
    try:
        return InventoryInstance.model_validate(instance)
    except ValidationError as exc:
        reason = f"needs an inventory instance, which has an exact reward model ({exc.error_count()} field errors)"
        raise InvalidInputError("reward_model", reason) from exc


def _box_maxima(space: gym.Space) -> np.ndarray:
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.asarray(space.nvec, dtype=np.int64).reshape(-1) - 1
    if isinstance(space, gym.spaces.MultiBinary):
        return np.ones(int(np.prod(space.n)), dtype=np.int64)
    kind = type(space).__name__
    raise InvalidInputError("action_space", f"expected MultiDiscrete or MultiBinary, got {kind}")


def _observation_scale(env: gym.Env) -> tuple[np.ndarray, np.ndarray]:
    hook = getattr(env.unwrapped, "observation_scale", None)
    if hook is not None:
        center, scale = hook()
        return np.asarray(center, float), np.asarray(scale, float)
    space = env.observation_space
    low, high = np.asarray(space.low, float).ravel(), np.asarray(space.high, float).ravel()
    finite = np.isfinite(low) & np.isfinite(high) & (high > low)
    return np.where(finite, (low + high) / 2, 0.0), np.where(finite, (high - low) / 2, 1.0)


class ActorCriticAgent:
    """A trained (or loadable) actor and critic with MinMax, neighbourhood, MILP and hybrid selectors."""

    def __init__(
        self,
        config: ActorCriticConfig,
        obs_center: np.ndarray,
        obs_scale: np.ndarray,
        amax: np.ndarray,
        reward_scale: float = 1.0,
        instance: dict | None = None,
        prior: ResidualPrior | None = None,
        potential: np.ndarray | None = None,
    ) -> None:
        """``instance`` (plain data) is the environment's instance; with ``config.reward_model`` it must be one
        whose model computes the exact expected step reward (inventory)."""
        self.config = config
        self.obs_center = torch.as_tensor(np.asarray(obs_center, float), dtype=torch.float32)
        self.obs_scale = torch.as_tensor(np.asarray(obs_scale, float), dtype=torch.float32)
        self.amax = torch.as_tensor(np.asarray(amax), dtype=torch.long)
        self.reward_scale = float(reward_scale)
        self.instance = instance
        # linear shaping potential phi(s) = potential . s (raw observation units); the critic learns Q - phi
        self.potential = (
            None if potential is None else torch.as_tensor(np.asarray(potential, float), dtype=torch.float32)
        )
        obs_dim, n = int(self.obs_center.numel()), int(self.amax.numel())
        self.prior = prior if prior is not None else ResidualPrior.box(self.amax.numpy())
        self.reward_source = _reward_source(instance) if config.reward_model else None
        if config.post_decision and not config.reward_model:
            raise InvalidInputError("post_decision", "needs reward_model=True (Q = r(s, a) + W(y) with r exact)")
        self.actor = Actor(obs_dim, n, config.actor_hidden)
        if not self.prior.is_box:  # zero residual: the untrained agent is the prior
            nn.init.zeros_(self.actor.head.weight)
            nn.init.zeros_(self.actor.head.bias)
        arch = (obs_dim, n, config.state_hidden, config.action_hidden, config.value_head)
        self.critic = Critic(*arch)
        self.critics = [self.critic] + ([Critic(*arch)] if config.twin_critic else [])
        self._search: NeighbourhoodSearch | None = None
        self._milp: BoxCriticMILP | None = None
        self.training_returns: list[float] = []

    @property
    def n_actions(self) -> int:
        return int(self.amax.numel())

    # ---------------------------------------------------------------------------------- helpers
    def normalise(self, obs: np.ndarray | torch.Tensor, field: str = "state") -> torch.Tensor:
        """Observations (d,) or (B, d) -> normalised (B, d); a wrong shape raises naming ``field``."""
        try:
            arr = np.asarray(obs, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(field, f"cannot be read as numbers ({exc})") from exc
        d = self.obs_center.numel()
        if arr.shape[-1:] != (d,) or arr.ndim > 2:
            raise InvalidInputError(field, f"expected shape ({d},), got {arr.shape}")
        return (torch.from_numpy(arr.reshape(-1, d)) - self.obs_center) / self.obs_scale

    def phi(self, obs_n: torch.Tensor) -> torch.Tensor:
        """Shaping potential (reward units) of normalised observations (B, d) -> (B,); zeros without shaping."""
        if self.potential is None:
            return torch.zeros(obs_n.shape[0])
        return self.raw(obs_n) @ self.potential

    def raw(self, obs_n: torch.Tensor) -> torch.Tensor:
        """Normalised observations (B, d) back in environment units."""
        return obs_n * self.obs_scale + self.obs_center

    def _model_inputs(self, obs_n: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """(inventories, shaping weights) as the reward source takes them."""
        return np.rint(self.raw(obs_n).numpy()), None if self.potential is None else self.potential.numpy()

    def reward_model(self, obs_n: torch.Tensor) -> SeparableReward | None:
        """The exact expected (shaped) step reward of every action in these states, in critic units."""
        if self.reward_source is None:
            return None
        model = self.reward_source.reward_model(*self._model_inputs(obs_n), self.config.gamma)
        return model.scaled(self.reward_scale)

    def expected_reward(
        self,
        obs_n: torch.Tensor,
        actions: torch.Tensor,
        model: SeparableReward | None = None,
    ) -> torch.Tensor:
        """``r(s, a)`` of integer actions (B, n) in critic units (B,), read from ``model`` (these states'
        :meth:`reward_model`) when given; zeros without a reward model."""
        if self.reward_source is None:
            return torch.zeros(obs_n.shape[0])
        if model is not None:
            return model.value(actions)
        inventory, potential = self._model_inputs(obs_n)
        r = self.reward_source.expected_reward(inventory, actions.numpy(), potential, self.config.gamma)
        return torch.as_tensor(r * self.reward_scale, dtype=torch.float32)

    def q(
        self,
        obs_n: torch.Tensor,
        actions: torch.Tensor,
        critic: Critic | None = None,
        model: SeparableReward | None = None,
    ) -> torch.Tensor:
        """``Q(s, a)`` of integer actions in critic units: the critic (default the first) plus the reward model
        (read from ``model``, these states' :meth:`reward_model`, when given)."""
        critic_in = self.scale(self.post_order_levels(obs_n, actions))
        return (critic or self.critic)(self.critic_obs(obs_n), critic_in) + self.expected_reward(obs_n, actions, model)

    def critic_obs(self, obs_n: torch.Tensor) -> torch.Tensor:
        """What the critic sees of the state: the observation, or nothing (zeros) for a post-decision
        continuation ``W(y)``, which the post-order levels alone determine."""
        return torch.zeros_like(obs_n) if self.config.post_decision else obs_n

    def post_order_levels(self, obs_n: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Post-order levels ``y = max(a, inventory)`` with ``post_decision`` (an order-up-to level below the
        stock on hand orders nothing), else the actions themselves; integer or continuous (differentiable)."""
        if not self.config.post_decision:
            return actions
        inventory = torch.round(self.raw(obs_n)).clamp(max=self.amax.float())
        return torch.maximum(actions, inventory.to(actions.dtype))

    def action_box(self, obs_n: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Per-state bounds (B, n) of the post-order levels ``max(trust region, inventory)`` with
        ``post_decision``; ``(None, None)`` (the trust region itself) otherwise."""
        if not self.config.post_decision:
            return None, None
        lo, hi = self.prior.lower, self.prior.upper
        B = obs_n.shape[0]
        return self.post_order_levels(obs_n, lo.expand(B, -1)), self.post_order_levels(obs_n, hi.expand(B, -1))

    def scale(self, actions: torch.Tensor) -> torch.Tensor:
        """The critic's view of integer actions: ``a / amax``, or ``(a - lower) / (upper - lower)`` with a prior."""
        return self.prior.scale(actions)

    def action_layer(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """The critic's action layer ``(W, w2, b2)`` with ``W`` acting on ``a / amax`` (what search and MILP
        take); with a prior, the offset ``-W lower / span`` moves into :meth:`state_terms`."""
        W, w2, b2 = self.critic.action_layer()
        if self.prior.is_box:
            return W, w2, b2
        return W * (self.amax / self.prior.span), w2, b2

    def state_terms(self, obs_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(c, v)`` such that ``Q = v + w2 . relu(c + W a / amax) + b2`` with :meth:`action_layer`'s ``W``."""
        c, v = self.critic.state_terms(self.critic_obs(obs_n))
        if self.prior.is_box:
            return c, v
        W = self.critic.action_layer()[0]
        return c - (self.prior.lower.float() / self.prior.span) @ W.T, v

    def searcher(self, steps: int | None = None) -> NeighbourhoodSearch:
        """The neighbourhood search bound to the critic's current weights (inside the prior's trust region)."""
        W, w2, b2 = self.action_layer()
        return NeighbourhoodSearch(
            W, w2, b2, self.amax, self.config.search_config(steps), lower=self.prior.lower, upper=self.prior.upper
        )

    def base_action(self, obs_n: torch.Tensor, noise: torch.Tensor | float = 0.0) -> torch.Tensor:
        """MinMax: the actor's proxy (+ noise) mapped by the prior and rounded, (B, n) long."""
        return self.post_order_levels(obs_n, self.prior.to_action(self.actor(obs_n) + noise))

    def proxy_scaled(self, obs_n: torch.Tensor) -> torch.Tensor:
        """The actor's unrounded action in critic scaling (k-NN's target)."""
        return self.prior.scaled(self.actor(obs_n).clamp(-1.0, 1.0))

    @torch.no_grad()
    def guard(
        self,
        obs_n: torch.Tensor,
        base: torch.Tensor,
        proposal: torch.Tensor,
        model: SeparableReward | None = None,
    ) -> torch.Tensor:
        """Trust-region acceptance: keep ``proposal`` only where every critic prefers it to ``base`` by more
        than ``search_margin * |Q(base)|``; elsewhere ``base``. A no-op with one critic and margin 0."""
        if self.config.search_margin <= 0.0 and len(self.critics) == 1:
            return proposal
        B = obs_n.shape[0]
        seen = self.critic_obs(obs_n).repeat(2, 1)
        both = self.scale(self.post_order_levels(obs_n.repeat(2, 1), torch.cat([base, proposal])))
        r_base = self.expected_reward(obs_n, base, model)
        r_gain = self.expected_reward(obs_n, proposal, model) - r_base
        values = [q(seen, both) for q in self.critics]  # base and proposal in one pass per critic
        gains = torch.stack([v[B:] - v[:B] + r_gain for v in values])
        accept = gains.min(0).values > self.config.search_margin * (values[0][:B] + r_base).abs()
        return torch.where(accept[:, None], proposal, base)

    def box_milp(self) -> BoxCriticMILP:
        """The persistent exact MILP of the critic (built once; the weights are fixed after training)."""
        if self._milp is None:
            W, w2, b2 = self.action_layer()
            self._milp = BoxCriticMILP(
                W.double().numpy(),
                w2.double().numpy(),
                b2,
                self.amax.numpy(),
                time_limit=self.config.mip_time_limit,
                mip_rel_gap=self.config.mip_rel_gap,
                seed=self.config.seed,
                lower=self.prior.lower.numpy(),
                upper=self.prior.upper.numpy(),
            )
        return self._milp

    def _invalidate(self) -> None:
        self._search, self._milp = None, None

    # ---------------------------------------------------------------------------------- training
    @classmethod
    def train(
        cls,
        env: gym.Env,
        config: ActorCriticConfig | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> ActorCriticAgent:
        """Train on copies of ``env`` (``num_envs`` of them); everything random derives from ``seed``."""
        cfg = copy.deepcopy(config) if config is not None else ActorCriticConfig()
        cfg.seed = seed
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        hint = getattr(env.unwrapped, "reward_scale_hint", None)
        reward_scale = cfg.reward_scale if cfg.reward_scale is not None else (hint() if hint else 1.0)
        center, scale = _observation_scale(env)
        instance = getattr(env.unwrapped, "instance", None)
        amax = _box_maxima(env.action_space)
        prior = ResidualPrior.make(cfg.prior, cfg.residual_radius, amax, instance)
        weights = getattr(env.unwrapped, "potential_weights", None)
        agent = cls(
            cfg,
            center,
            scale,
            amax,
            reward_scale,
            instance.model_dump(mode="json") if hasattr(instance, "model_dump") else None,
            prior,
            weights() if (cfg.shaping and weights is not None) else None,
        )
        n, obs_dim, E = agent.n_actions, int(center.size), cfg.num_envs
        critics = agent.critics
        actor_target, critic_targets = copy.deepcopy(agent.actor), [copy.deepcopy(q) for q in critics]
        actor_opt = torch.optim.Adam(agent.actor.parameters(), lr=cfg.actor_lr, foreach=True)
        critic_params = [p for q in critics for p in q.parameters()]
        critic_opt = torch.optim.Adam(critic_params, lr=cfg.critic_lr, foreach=True)

        # replay buffer (normalised observations, integer actions)
        size = cfg.buffer_size
        buf_obs = torch.zeros(size, obs_dim)
        buf_next = torch.zeros(size, obs_dim)
        buf_act = torch.zeros(size, n, dtype=torch.long)
        buf_rew = torch.zeros(size)
        buf_done = torch.zeros(size)
        buf_model = torch.zeros(size)  # r(s, a) of the reward model (zeros without one), for the critic's target
        filled, ptr = 0, 0

        envs = [copy.deepcopy(env) for _ in range(E)]  # the caller's env is left untouched
        obs = np.stack([e.reset(seed=seed * 1000 + i)[0] for i, e in enumerate(envs)])
        episode_returns, running = [], np.zeros(E)
        n_updates, critic_loss = 0, torch.zeros(())
        iterations = max(1, cfg.total_steps // E)
        bar = tqdm(range(iterations), desc="actor-critic", disable=not progress, mininterval=1.0)
        for it in bar:
            global_step = it * E
            # 1. act: proxy (+ noise) -> MinMax base -> neighbourhood search under the current critic
            obs_n = agent.normalise(obs)
            with torch.no_grad():
                if global_step < cfg.learning_starts:
                    uniform = agent.prior.to_action(torch.rand(E, n, generator=gen) * 2 - 1)
                    base = agent.post_order_levels(obs_n, uniform)
                else:
                    base = agent.base_action(obs_n, cfg.exploration_noise * torch.randn(E, n, generator=gen))
                if cfg.train_selector == "neighbourhood":
                    c = agent.state_terms(obs_n)[0]
                    model = agent.reward_model(obs_n)
                    lo, hi = agent.action_box(obs_n)
                    found = (
                        agent.searcher(cfg.train_search_steps)
                        .search(c, base, generator=gen, reward=model, lower=lo, upper=hi)
                        .actions
                    )
                    actions = agent.guard(obs_n, base, found, model)
                else:
                    actions, model = base, None
            model_rewards = agent.expected_reward(obs_n, actions, model)
            # 2. step every environment; bootstrap through truncation, not through termination
            next_obs = np.empty_like(obs)
            for i, e in enumerate(envs):
                o, r, term, trunc, _ = e.step(actions[i].numpy())
                idx = (ptr + i) % size
                buf_obs[idx], buf_act[idx], buf_model[idx] = obs_n[i], actions[i], model_rewards[i]
                buf_next[idx] = agent.normalise(o)[0]
                shaped = float(r) + (0.0 if term else cfg.gamma * float(agent.phi(buf_next[idx : idx + 1])[0]))
                shaped -= float(agent.phi(obs_n[i : i + 1])[0])
                buf_rew[idx], buf_done[idx] = shaped * reward_scale, float(term)
                running[i] += r
                if term or trunc:
                    episode_returns.append(running[i])
                    running[i] = 0.0
                    o, _ = e.reset(seed=int(rng.integers(2**31)))
                next_obs[i] = o
            ptr, filled, obs = (ptr + E) % size, min(filled + E, size), next_obs

            # 3. learn: critic TD regression, then (delayed) actor ascent and target tracking
            if global_step + E < cfg.learning_starts:
                continue
            for _ in range(cfg.updates_per_iteration):
                idx = torch.randint(filled, (cfg.batch_size,), generator=gen)
                s, a, r, s2, d = buf_obs[idx], buf_act[idx], buf_rew[idx], buf_next[idx], buf_done[idx]
                with torch.no_grad():
                    smoothing = (cfg.target_noise * torch.randn(cfg.batch_size, n, generator=gen)).clamp(
                        -2.5 * cfg.target_noise, 2.5 * cfg.target_noise
                    )
                    a2 = agent.post_order_levels(s2, agent.prior.to_action(actor_target(s2) + smoothing))
                    q2 = torch.stack([agent.q(s2, a2, q) for q in critic_targets]).min(0).values
                    # with a reward model the critic regresses on the continuation: target - r(s, a), where
                    # r(s, a) is the exact mean of r, so (expected_target) only gamma Q'(s', a') is left
                    if agent.reward_source is not None and cfg.expected_target:
                        target = cfg.gamma * (1.0 - d) * q2
                    else:
                        target = r + cfg.gamma * (1.0 - d) * q2 - buf_model[idx]
                a_scaled, s_seen = agent.scale(agent.post_order_levels(s, a)), agent.critic_obs(s)
                critic_loss = sum(nn.functional.mse_loss(q(s_seen, a_scaled), target) for q in critics)
                if cfg.action_weight_decay > 0.0:
                    critic_loss = critic_loss + cfg.action_weight_decay * sum(
                        q.action_in.weight.pow(2).sum() for q in critics
                    )
                critic_opt.zero_grad()
                critic_loss.backward()
                critic_opt.step()
                n_updates += 1
                if n_updates % cfg.policy_frequency == 0:
                    logits = agent.actor.logits(s)
                    proxy = torch.tanh(logits)
                    continuous = agent.prior.continuous(proxy)
                    levels = agent.post_order_levels(s, continuous)
                    objective = agent.critic(agent.critic_obs(s), agent.prior.scale(levels))
                    model = agent.reward_model(s)
                    if model is not None:  # the reward model between lattice points (no fixed charge)
                        objective = objective + model.interpolate(continuous)
                    actor_loss = -objective.mean()
                    actor_loss = actor_loss + cfg.saturation_penalty * logits.pow(2).mean()
                    actor_opt.zero_grad()
                    actor_loss.backward()
                    actor_opt.step()
                    with torch.no_grad():
                        pairs = ((agent.actor, actor_target), *zip(critics, critic_targets, strict=True))
                        for net, tgt in pairs:
                            for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                                tp.lerp_(p, cfg.tau)
            if progress and episode_returns and it % 50 == 0:
                recent = np.mean(episode_returns[-10:])
                bar.set_postfix(ret=f"{recent:.1f}", q_loss=f"{critic_loss.item():.3g}")
        agent.training_returns = episode_returns
        agent._invalidate()
        return agent

    # ---------------------------------------------------------------------------------- deciding
    @torch.no_grad()
    def q_value(self, obs: np.ndarray, action: np.ndarray) -> float:
        """Critic value of ``action`` in reward units (the critic predicts scaled returns)."""
        a = torch.as_tensor(np.asarray(action)).reshape(1, -1)
        obs_n = self.normalise(obs)
        return float(self.q(obs_n, a)[0]) / self.reward_scale + float(self.phi(obs_n)[0])

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        selector: str = "neighbourhood",
        time_limit: float | None = None,
    ) -> tuple[np.ndarray, dict]:
        """The action for one observation and ``{value, seconds, status, selector, ...}``; deterministic."""
        if selector not in SELECTORS:
            raise InvalidInputError("selector", f"expected one of {', '.join(SELECTORS)}, got {selector!r}")
        start = time.perf_counter()
        obs_n = self.normalise(obs)
        if not torch.all(torch.isfinite(obs_n)):
            raise InvalidInputError("state", "contains NaN or infinity")
        base = self.base_action(obs_n)
        c, v = self.state_terms(obs_n)
        model = self.reward_model(obs_n)
        lo, hi = self.action_box(obs_n)
        info: dict = {"selector": selector, "status": HEURISTIC}
        action = base
        if selector in ("neighbourhood", "hybrid"):
            if self._search is None:
                self._search = self.searcher()
            limit = time_limit if selector == "neighbourhood" else None
            result = self._search.search(c, base, time_limit=limit, reward=model, lower=lo, upper=hi)
            action = result.actions if selector == "hybrid" else self.guard(obs_n, base, result.actions, model)
            info["search_steps"] = result.steps
        if selector in ("mip", "hybrid"):
            remaining = None if time_limit is None else max(time_limit - (time.perf_counter() - start), 1e-3)
            found = self.box_milp().solve(
                c[0].double().numpy(),
                warm_start=action[0].numpy(),
                time_limit=remaining,
                reward=model,
                lower=None if lo is None else lo[0].numpy(),
                upper=None if hi is None else hi[0].numpy(),
            )
            action = torch.as_tensor(found.action).reshape(1, -1)
            sol = found.solution
            bound = (sol.bound + float(v[0])) / self.reward_scale + float(self.phi(obs_n)[0])
            info.update(status=sol.status, bound=bound, gap=sol.gap, mip_seconds=sol.seconds)
        value = float(self.q(obs_n, action, model=model)[0]) / self.reward_scale + float(self.phi(obs_n)[0])
        info.update(value=value, seconds=time.perf_counter() - start)
        return action[0].numpy().astype(np.int64), info

    def decide(self, state: np.ndarray, selector: str = "neighbourhood", time_limit: float | None = None) -> Decision:
        """The action for ``state`` as a :class:`Decision` (the ``Engine`` contract); see :meth:`act`."""
        if time_limit is not None and (not np.isfinite(time_limit) or time_limit <= 0):
            raise InvalidInputError("time_limit", "must be a positive number of seconds")
        action, info = self.act(state, selector=selector, time_limit=time_limit)
        gap = info.get("gap", float("nan"))
        return Decision(
            action,
            info["value"],
            info.get("bound", float("nan")),
            gap,
            info["status"],
            info["seconds"],
            selector,
            self.policy_version,
        )

    @property
    def policy_version(self) -> str:
        """Digest of the actor and critic weights."""
        return weights_digest(self.actor, self.critic)

    def policy(self, selector: str = "neighbourhood", time_limit: float | None = None):
        """``obs -> action`` callable for rollouts."""
        return lambda obs: self.act(obs, selector=selector, time_limit=time_limit)[0]

    # ---------------------------------------------------------------------------------- checkpoints
    def save(self, path: str | Path) -> Path:
        """Write ``config.json`` and ``weights.safetensors`` into directory ``path`` (atomically replaced)."""
        meta = {
            "kind": "actor_critic",
            "policy_version": self.policy_version,
            "config": asdict(self.config),
            "obs_center": self.obs_center.tolist(),
            "obs_scale": self.obs_scale.tolist(),
            "amax": self.amax.tolist(),
            "reward_scale": self.reward_scale,
            "instance": self.instance,
            "prior": self.prior.to_dict(),
            "potential": None if self.potential is None else self.potential.tolist(),
        }
        tensors = {f"actor.{k}": v for k, v in self.actor.state_dict().items()}
        for i, q in enumerate(self.critics):
            tensors |= {f"critic{i + 1 if i else ''}.{k}": v for k, v in q.state_dict().items()}
        return write_checkpoint_dir(path, meta, tensors)

    @classmethod
    def load(cls, path: str | Path) -> ActorCriticAgent:
        meta = read_checkpoint_meta(path)
        if meta.get("kind") != "actor_critic":
            raise InvalidInputError("path", f"{path} is not an actor-critic checkpoint")
        amax = np.asarray(meta["amax"])
        prior = ResidualPrior.from_dict(meta["prior"], amax) if meta.get("prior") else None
        agent = cls(
            ActorCriticConfig.from_dict(meta["config"]),
            np.asarray(meta["obs_center"]),
            np.asarray(meta["obs_scale"]),
            amax,
            meta["reward_scale"],
            meta.get("instance"),
            prior,
            meta.get("potential"),
        )
        tensors = load_file(str(Path(path) / "weights.safetensors"))
        nets = [("actor.", agent.actor)] + [(f"critic{i + 1 if i else ''}.", q) for i, q in enumerate(agent.critics)]
        for prefix, net in nets:
            net.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})
        return agent
