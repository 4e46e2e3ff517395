"""Training the Q-actor-critic (DDPG-style, CleanRL layout): one loop of act -> step -> learn.

:meth:`ActorCriticTrainer.train` reads like the pseudocode::

    for every vector step:
        1. act      proxy (+ noise) -> MinMax base -> neighbourhood search under the current critic
        2. step     every environment; store (s, a, r, s', done, r_model(s, a)) in the replay buffer
        3. learn    critic TD regression; every ``policy_frequency`` updates the actor ascends the critic and
                    the target networks track the online ones

The configuration's switches (prior, shaping, reward model, post-decision levels, twin critics) live in the
agent's helpers (:mod:`engine.dnc.agent`), so each step below is the same code under every setting.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from engine.dnc.agent import ActorCriticAgent
from engine.dnc.config import ActorCriticConfig
from engine.protocols import IntegerBoxEnvironment
from engine.sequoia.residual_prior import ResidualPrior
from scenarios.errors import InvalidInputError
from solvers.formulations.separable_reward import SeparableReward


def box_maxima(space: gym.Space) -> np.ndarray:
    """The largest entry of each action component of an integer-box action space."""
    if isinstance(space, gym.spaces.MultiDiscrete):
        return np.asarray(space.nvec, dtype=np.int64).reshape(-1) - 1
    if isinstance(space, gym.spaces.MultiBinary):
        return np.ones(int(np.prod(space.n)), dtype=np.int64)
    kind = type(space).__name__
    raise InvalidInputError("action_space", f"expected MultiDiscrete or MultiBinary, got {kind}")


@dataclass
class ReplayBuffer:
    """Transitions with normalised observations and integer actions, written in a ring."""

    obs: torch.Tensor
    next_obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    dones: torch.Tensor
    model_rewards: torch.Tensor  # r(s, a) of the reward model (zeros without one), for the critic's target
    filled: int = 0
    ptr: int = 0

    @classmethod
    def empty(cls, size: int, obs_dim: int, n_actions: int) -> ReplayBuffer:
        return cls(
            torch.zeros(size, obs_dim),
            torch.zeros(size, obs_dim),
            torch.zeros(size, n_actions, dtype=torch.long),
            torch.zeros(size),
            torch.zeros(size),
            torch.zeros(size),
        )

    @property
    def size(self) -> int:
        return int(self.rewards.shape[0])

    def advance(self, count: int) -> None:
        self.ptr, self.filled = (self.ptr + count) % self.size, min(self.filled + count, self.size)

    def sample(self, batch_size: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(s, a, r, s', done, r_model) of ``batch_size`` uniform draws."""
        idx = torch.randint(self.filled, (batch_size,), generator=gen)
        return (
            self.obs[idx],
            self.actions[idx],
            self.rewards[idx],
            self.next_obs[idx],
            self.dones[idx],
            self.model_rewards[idx],
        )


def build_agent(env: gym.Env, cfg: ActorCriticConfig) -> ActorCriticAgent:
    """A fresh agent for ``env``: observation scaling, action box, residual prior and shaping potential."""
    unwrapped = env.unwrapped
    if not isinstance(unwrapped, IntegerBoxEnvironment):
        raise InvalidInputError("env", f"{type(unwrapped).__name__} is not an integer-box environment")
    reward_scale = cfg.reward_scale if cfg.reward_scale is not None else unwrapped.reward_scale_hint()
    center, scale = (np.asarray(v, float) for v in unwrapped.observation_scale())
    instance = unwrapped.instance
    amax = box_maxima(env.action_space)
    prior = ResidualPrior.make(cfg.prior, cfg.residual_radius, amax, instance)
    weights = unwrapped.potential_weights() if cfg.shaping else None
    return ActorCriticAgent(
        cfg,
        center,
        scale,
        amax,
        reward_scale,
        instance.model_dump(mode="json") if instance is not None else None,
        prior,
        weights,
    )


class ActorCriticTrainer:
    """Trains an :class:`ActorCriticAgent` on ``num_envs`` copies of ``env``; everything random derives from
    ``seed`` (the caller's ``env`` is left untouched)."""

    def __init__(self, env: gym.Env, config: ActorCriticConfig | None = None, seed: int = 0) -> None:
        self.env, self.seed = env, seed
        self.config = copy.deepcopy(config) if config is not None else ActorCriticConfig()
        self.config.seed = seed

    def train(self, progress: bool = True) -> ActorCriticAgent:
        cfg, seed = self.config, self.seed
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        agent = self.agent = build_agent(self.env, cfg)
        self.actor_target = copy.deepcopy(agent.actor)
        self.critic_targets = [copy.deepcopy(q) for q in agent.critics]
        self.actor_opt = torch.optim.Adam(agent.actor.parameters(), lr=cfg.actor_lr, foreach=True)
        critic_params = [p for q in agent.critics for p in q.parameters()]
        self.critic_opt = torch.optim.Adam(critic_params, lr=cfg.critic_lr, foreach=True)
        self.buffer = ReplayBuffer.empty(cfg.buffer_size, int(agent.obs_center.numel()), agent.n_actions)
        self.envs = [copy.deepcopy(self.env) for _ in range(cfg.num_envs)]
        obs = np.stack([e.reset(seed=seed * 1000 + i)[0] for i, e in enumerate(self.envs)])
        self.episode_returns: list[float] = []
        self.running = np.zeros(cfg.num_envs)
        n_updates, critic_loss = 0, torch.zeros(())

        E = cfg.num_envs
        bar = tqdm(range(max(1, cfg.total_steps // E)), desc="actor-critic", disable=not progress, mininterval=1.0)
        for it in bar:
            global_step = it * E
            obs_n = agent.normalise(obs)
            actions, model = self.explore(obs_n, global_step)  # 1. act
            obs = self.step(obs, obs_n, actions, model)  # 2. step and store
            if global_step + E < cfg.learning_starts:
                continue
            for _ in range(cfg.updates_per_iteration):  # 3. learn
                s, a, r, s2, d, r_model = self.buffer.sample(cfg.batch_size, self.gen)
                critic_loss = self.update_critic(s, a, r, s2, d, r_model)
                n_updates += 1
                if n_updates % cfg.policy_frequency == 0:
                    self.update_actor(s)
                    self.track_targets()
            if progress and self.episode_returns and it % 50 == 0:
                recent = np.mean(self.episode_returns[-10:])
                bar.set_postfix(ret=f"{recent:.1f}", q_loss=f"{critic_loss.item():.3g}")
        agent.training_returns = self.episode_returns
        agent._invalidate()
        return agent

    # ------------------------------------------------------------------------------------ the steps
    @torch.no_grad()
    def explore(self, obs_n: torch.Tensor, global_step: int) -> tuple[torch.Tensor, SeparableReward | None]:
        """Training actions (E, n) and these states' reward model: uniform proxies before ``learning_starts``,
        then the noisy actor's MinMax action, improved by the neighbourhood search with ``train_selector``."""
        agent, cfg, gen = self.agent, self.config, self.gen
        E, n = obs_n.shape[0], agent.n_actions
        if global_step < cfg.learning_starts:
            uniform = agent.prior.to_action(torch.rand(E, n, generator=gen) * 2 - 1)
            base = agent.post_order_levels(obs_n, uniform)
        else:
            base = agent.base_action(obs_n, cfg.exploration_noise * torch.randn(E, n, generator=gen))
        if cfg.train_selector != "neighbourhood":
            return base, None
        c = agent.state_terms(obs_n)[0]
        model = agent.reward_model(obs_n)
        lo, hi = agent.action_box(obs_n)
        search = agent.searcher(cfg.train_search_steps)
        found = search.search(c, base, generator=gen, reward=model, lower=lo, upper=hi).actions
        return agent.guard(obs_n, base, found, model), model

    def step(
        self, obs: np.ndarray, obs_n: torch.Tensor, actions: torch.Tensor, model: SeparableReward | None
    ) -> np.ndarray:
        """Step every environment, store the (shaped, scaled) transitions, reset finished episodes; bootstrap
        through truncation, not through termination. Returns the next observations."""
        agent, cfg, buf = self.agent, self.config, self.buffer
        model_rewards = agent.expected_reward(obs_n, actions, model)
        next_obs = np.empty_like(obs)
        for i, e in enumerate(self.envs):
            o, r, term, trunc, _ = e.step(actions[i].numpy())
            idx = (buf.ptr + i) % buf.size
            buf.obs[idx], buf.actions[idx], buf.model_rewards[idx] = obs_n[i], actions[i], model_rewards[i]
            buf.next_obs[idx] = agent.normalise(o)[0]
            shaped = float(r) + (0.0 if term else cfg.gamma * float(agent.phi(buf.next_obs[idx : idx + 1])[0]))
            shaped -= float(agent.phi(obs_n[i : i + 1])[0])
            buf.rewards[idx], buf.dones[idx] = shaped * agent.reward_scale, float(term)
            self.running[i] += r
            if term or trunc:
                self.episode_returns.append(self.running[i])
                self.running[i] = 0.0
                o, _ = e.reset(seed=int(self.rng.integers(2**31)))
            next_obs[i] = o
        buf.advance(len(self.envs))
        return next_obs

    def update_critic(
        self,
        s: torch.Tensor,
        a: torch.Tensor,
        r: torch.Tensor,
        s2: torch.Tensor,
        d: torch.Tensor,
        r_model: torch.Tensor,
    ) -> torch.Tensor:
        """One TD step of every critic towards the clipped double-Q target with a smoothed target action."""
        agent, cfg = self.agent, self.config
        with torch.no_grad():
            noise = cfg.target_noise * torch.randn(cfg.batch_size, agent.n_actions, generator=self.gen)
            smoothing = noise.clamp(-2.5 * cfg.target_noise, 2.5 * cfg.target_noise)
            a2 = agent.post_order_levels(s2, agent.prior.to_action(self.actor_target(s2) + smoothing))
            q2 = torch.stack([agent.q(s2, a2, q) for q in self.critic_targets]).min(0).values
            # with a reward model the critic regresses on the continuation: target - r(s, a), where r(s, a) is
            # the exact mean of r, so (expected_target) only gamma Q'(s', a') is left
            if agent.reward_source is not None and cfg.expected_target:
                target = cfg.gamma * (1.0 - d) * q2
            else:
                target = r + cfg.gamma * (1.0 - d) * q2 - r_model
        a_scaled, s_seen = agent.scale(agent.post_order_levels(s, a)), agent.critic_obs(s)
        loss = torch.stack([nn.functional.mse_loss(q(s_seen, a_scaled), target) for q in agent.critics]).sum()
        if cfg.action_weight_decay > 0.0:
            decay = torch.stack([q.action_in.weight.pow(2).sum() for q in agent.critics]).sum()
            loss = loss + cfg.action_weight_decay * decay
        self.critic_opt.zero_grad()
        loss.backward()
        self.critic_opt.step()
        return loss

    def update_actor(self, s: torch.Tensor) -> None:
        """The actor ascends the critic (plus the reward model between lattice points) at its continuous proxy,
        with a penalty that keeps tanh unsaturated."""
        agent, cfg = self.agent, self.config
        logits = agent.actor.logits(s)
        continuous = agent.prior.continuous(torch.tanh(logits))
        levels = agent.post_order_levels(s, continuous)
        objective = agent.critic(agent.critic_obs(s), agent.prior.scale(levels))
        model = agent.reward_model(s)
        if model is not None:  # the reward model between lattice points (no fixed charge)
            objective = objective + model.interpolate(continuous)
        loss = -objective.mean() + cfg.saturation_penalty * logits.pow(2).mean()
        self.actor_opt.zero_grad()
        loss.backward()
        self.actor_opt.step()

    @torch.no_grad()
    def track_targets(self) -> None:
        """Polyak averaging of the target networks towards the online ones."""
        agent = self.agent
        pairs = ((agent.actor, self.actor_target), *zip(agent.critics, self.critic_targets, strict=True))
        for net, tgt in pairs:
            for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                tp.lerp_(p, self.config.tau)


def train_actor_critic(
    env: gym.Env, config: ActorCriticConfig | None = None, seed: int = 0, progress: bool = True
) -> ActorCriticAgent:
    """The actor-critic trainer of :data:`engine.trainers.TRAINERS`."""
    return ActorCriticTrainer(env, config, seed).train(progress=progress)
