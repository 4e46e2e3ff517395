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

``ActorCriticAgent.train(env, config, seed)`` (:mod:`engine.dnc.training`) returns an agent;
``agent.decide(state, selector)`` returns a :class:`~engine.decision.Decision` with ``selector`` in
``minmax | neighbourhood | mip | hybrid`` (:mod:`engine.dnc.selectors`); checkpoints are a directory with
``config.json`` and ``weights.safetensors`` (no pickle). Hyperparameters: :mod:`engine.dnc.config`; networks:
:mod:`engine.dnc.networks`.
"""

from __future__ import annotations

import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from pydantic import ValidationError
from torch import nn

from engine.checkpoint import weights_digest
from engine.decision import Decision, check_time_limit
from engine.dnc.config import ActorCriticConfig
from engine.dnc.networks import Actor, Critic
from engine.dnc.selectors import SELECTORS, BoxQuery
from engine.protocols import batch_rows
from engine.sequoia.residual_prior import ResidualPrior
from engine.sequoia.selectors.mip import SCORE_RTOL
from scenarios.boxes.inventory import InventoryInstance
from scenarios.errors import InvalidInputError
from scenarios.validation import as_int_vector
from solvers.formulations.box_critic_milp import BoxCriticMILP
from solvers.formulations.separable_reward import SeparableReward
from solvers.search.neighbourhood import NeighbourhoodSearch
from solvers.solution import HEURISTIC, OPTIMAL, TIME_LIMIT, relative_gap


def _reward_source(instance) -> InventoryInstance:
    """The instance whose exact expected step reward backs ``reward_model=True`` (inventory instances)."""
    if isinstance(instance, InventoryInstance):
        return instance
    try:
        return InventoryInstance.model_validate(instance)
    except ValidationError as exc:
        reason = f"needs an inventory instance, which has an exact reward model ({exc.error_count()} field errors)"
        raise InvalidInputError("reward_model", reason) from exc


class ActorCriticAgent:
    """A trained (or loadable) actor and critic with MinMax, neighbourhood, MILP and hybrid selectors."""

    kind = "actor_critic"

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

    def single(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """One observation (d,) or (1, d), normalised (1, d); several rows raise naming ``state``."""
        obs_n = self.normalise(obs)
        if obs_n.shape[0] != 1:
            raise InvalidInputError("state", f"one state per decision, got {obs_n.shape[0]}; use decide_batch")
        return obs_n

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
                backend=self.config.mip_backend,
                lower=self.prior.lower.numpy(),
                upper=self.prior.upper.numpy(),
            )
        return self._milp

    def _invalidate(self) -> None:
        self._search, self._milp = None, None

    # ---------------------------------------------------------------------------------- training

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
        from engine.dnc.training import ActorCriticTrainer

        return ActorCriticTrainer(env, config, seed).train(progress=progress)

    # ---------------------------------------------------------------------------------- deciding
    @torch.no_grad()
    def q_value(self, obs: np.ndarray, action: np.ndarray) -> float:
        """Critic value of ``action`` in reward units (the critic predicts scaled returns)."""
        amax = self.amax.numpy().astype(np.int64)
        a = torch.as_tensor(as_int_vector(action, "action", amax.size, 0, int(amax.max()))).reshape(1, -1)
        if bool((a[0].numpy() > amax).any()):
            raise InvalidInputError("action", f"entries must lie in [0, amax] per entry (amax {amax.tolist()})")
        obs_n = self.single(obs)
        return float(self.q(obs_n, a)[0]) / self.reward_scale + float(self.phi(obs_n)[0])

    def decision_searcher(self) -> NeighbourhoodSearch:
        """The (cached) decision-time neighbourhood search."""
        if self._search is None:
            self._search = self.searcher()
        return self._search

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
        obs_n = self.single(obs)
        if not torch.all(torch.isfinite(obs_n)):
            raise InvalidInputError("state", "contains NaN or infinity")
        c, v = self.state_terms(obs_n)
        lower, upper = self.action_box(obs_n)
        query = BoxQuery(obs_n, self.base_action(obs_n), c, v, self.reward_model(obs_n), lower, upper, start)
        action, found = SELECTORS[selector](self, query, time_limit)
        info: dict = {"selector": selector, "status": HEURISTIC, **found}
        value = float(self.q(obs_n, action, model=query.model)[0]) / self.reward_scale + float(self.phi(obs_n)[0])
        if "bound" in info:  # the MILP's bound and gap in decision units (its own objective omits v(s) and phi)
            info["bound"] = max(float(info["bound"]), value)  # float32 network vs float64 MILP
            info["gap"] = relative_gap(value, info["bound"])
            if info["status"] == OPTIMAL and info["gap"] > self.config.mip_rel_gap + SCORE_RTOL:
                info["status"] = TIME_LIMIT  # proven on the MILP's objective, not to the gap on the decision's
        info.update(value=value, seconds=time.perf_counter() - start)
        return action[0].numpy().astype(np.int64), info

    def decide(self, state: np.ndarray, selector: str = "neighbourhood", time_limit: float | None = None) -> Decision:
        """The action for ``state`` as a :class:`Decision` (the ``Engine`` contract); see :meth:`act`."""
        check_time_limit(time_limit)
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

    def decide_batch(
        self, states: object, selector: str = "neighbourhood", time_limit: float | None = None
    ) -> list[Decision]:
        """One decision per state of ``states`` (a list of states, or an array with one state per row)."""
        return [self.decide(row, selector, time_limit) for row in batch_rows(states)]

    @property
    def selectors(self) -> tuple[str, ...]:
        """The actor-critic's selectors (:data:`engine.dnc.selectors.SELECTORS`), the default first."""
        return ("neighbourhood", *(name for name in SELECTORS if name != "neighbourhood"))

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
        from engine.dnc.checkpoint import save_agent

        return save_agent(self, path)

    @classmethod
    def load(cls, path: str | Path) -> ActorCriticAgent:
        from engine.dnc.checkpoint import load_agent

        return load_agent(path)
