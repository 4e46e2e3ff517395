"""SEQUOIA-style DQN over combinatorial actions, done right.

Reads top to bottom like the paper's pseudocode; every hyperparameter is in :class:`DQNConfig`.

1. Warm start: fit Q(s, a) to the one-step expected reward on random states and feasible actions.
2. Episodes over the finite horizon (time-to-go is part of the state): act epsilon-greedily, the greedy
   action being the exact MILP argmax of the online network (``act_selector``).
3. TD targets without one MILP per sample: the maximum over next actions is taken over a candidate pool
   scored in one batch: the exact argmax stored when the agent reached s' (it is computed anyway to act
   there) + the recent argmaxes (elites) + fresh random feasible actions. Double-DQN style, the online
   network picks among the candidates and the target network evaluates.
4. The target network is hard-copied every ``target_update_every`` gradient steps (the reference's
   effectively never moved); the learning rate follows a cosine schedule to a floor, never to zero; the
   last step of an episode does not bootstrap.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import deque

import numpy as np
import torch
from tqdm.auto import tqdm

from engine.analysis.evaluation import evaluate
from engine.planners.prior import PlannerPrior, make_prior, resolve_prior
from engine.sequoia.armwise_network import ArmwiseQNetwork
from engine.sequoia.dqn_config import DQNConfig, TrainingSummary
from engine.sequoia.milp_friendly import MilpFriendlyRegulariser
from engine.sequoia.network_inputs import AnyQNetwork, make_encoder, make_network, make_state_q, network_inputs
from engine.sequoia.planner_candidates import check_planner_candidates, choose_final, significant_gain
from engine.sequoia.q_network import QNetwork
from engine.sequoia.selectors import SELECTORS
from engine.sequoia.state_q import StateQ
from scenarios.cormab.instance import CoRMABInstance


class Replay:
    """Fixed-size ring buffer of transitions; ``next_best`` is the online argmax at the next state."""

    def __init__(self, size: int, n_arms: int, n_actions: int) -> None:
        self.size, self.count, self.pos = size, 0, 0
        self.states = np.zeros((size, n_arms), np.int8)
        self.ttg = np.zeros(size, np.int64)
        self.actions = np.zeros((size, n_actions), np.float32)
        self.rewards = np.zeros(size, np.float32)
        self.next_states = np.zeros((size, n_arms), np.int8)
        self.next_ttg = np.zeros(size, np.int64)
        self.done = np.zeros(size, np.float32)
        self.next_best = np.zeros((size, n_actions), np.float32)

    def add(self, s, ttg, a, r, s2, ttg2, done, best2) -> None:
        i = self.pos
        self.states[i], self.ttg[i], self.actions[i], self.rewards[i] = s, ttg, a, r
        self.next_states[i], self.next_ttg[i], self.done[i], self.next_best[i] = s2, ttg2, done, best2
        self.pos = (self.pos + 1) % self.size
        self.count = min(self.count + 1, self.size)


class DQNTrainer:
    """Train a :class:`QNetwork` on one coRMAB instance."""

    def __init__(self, instance: CoRMABInstance, config: DQNConfig | None = None, seed: int = 0) -> None:
        config = config or DQNConfig()
        # the concrete prior is what the checkpoint stores: "auto" may choose differently in a later version
        config = dataclasses.replace(config, prior=resolve_prior(config.prior, instance))
        self.instance, self.config, self.seed = instance, config, seed
        self.model = instance.action_model()
        self.encoder = make_encoder(instance)
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.net = make_network(self.config, instance, self.encoder)
        self.version = 0
        self.summary = TrainingSummary()
        self.regulariser = (
            None
            if isinstance(self.net, ArmwiseQNetwork)  # linear in the action: nothing for the MILP to stabilise
            else MilpFriendlyRegulariser.from_config(self.config, self.encoder, self.model)
        )
        check_planner_candidates(self.config.planner_candidates)
        self.prior = make_prior(self.config.prior, instance)
        if self.prior is not None:  # the network starts at exactly 0: Q = the prior, the planner's policy
            self._zero_output()

    # ------------------------------------------------------------------------------------ helpers
    def state_q(
        self, states: np.ndarray, ttg: int, net: AnyQNetwork | None = None, version: int | None = None
    ) -> StateQ:
        """Q(s, .) of ``net`` (default: the online network) with the reward prior when configured."""
        return make_state_q(
            self.model,
            self.net if net is None else net,
            self.encoder,
            self.prior,
            states,
            ttg,
            self.version if version is None else version,
            closed=self.instance.unavailable_entries(states),
        )

    def _random_states(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        counts = self.instance.arms.state_counts
        high = int(counts[0]) if np.all(counts == counts[0]) else counts  # a scalar keeps the former draws
        states = self.rng.integers(0, high, (k, self.instance.n_arms))
        return states, self.rng.integers(1, self.instance.horizon + 1, k)

    def _q(
        self, net: AnyQNetwork, actions: np.ndarray, states: np.ndarray, ttg: np.ndarray, with_prior: bool = True
    ) -> torch.Tensor:
        feats, context = network_inputs(net, self.encoder, self.prior, states, ttg)
        q = net(torch.as_tensor(actions, dtype=torch.float32), feats, context)
        return q if self.prior is None or not with_prior else q + self.prior.values(states, ttg, actions)

    # --------------------------------------------------------------------------------- warm start
    def warm_start(self) -> float:
        """Supervised fit of Q to the one-step expected reward; also sets the network's output scale.

        With the reward prior the network alone is fitted to r(s, a), which shapes its hidden features
        around how actions act on arm states; then its output layer is zeroed, so TD training starts from
        Q = r(s, a) + 0 (the myopic policy) on those features. (Started from a zero output layer instead,
        the hidden layers get no signal and the MILP-friendly regulariser leaves the network constant in the
        action: capacity J = 20 seed 0 stayed exactly myopic through 100 episodes.)"""
        cfg = self.config
        if self.prior is not None:
            self.net.reset_output()
        states, ttg = self._random_states(cfg.warm_start_samples)
        actions = np.stack([self.model.sample(self.rng) for _ in range(cfg.warm_start_samples)])
        actions = self.instance.drop_unavailable(states, actions)  # state-dependent limits
        rewards = np.array([self.instance.expected_reward(s, a) for s, a in zip(states, actions, strict=True)])
        # Q is of the order of horizon x one-step reward: learn on a unit scale, report real values.
        self.net.set_output_scale(float(self.instance.horizon * max(np.abs(rewards).mean(), 1e-6)))
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        target = torch.as_tensor(rewards, dtype=torch.float32)
        loss = torch.tensor(float("nan"))
        for _ in range(cfg.warm_start_epochs):
            for idx in torch.randperm(len(target)).split(256):
                loss = (
                    torch.nn.functional.mse_loss(
                        self._q(
                            self.net, actions[idx.numpy()], states[idx.numpy()], ttg[idx.numpy()], with_prior=False
                        ),
                        target[idx],
                    )
                    / self.net.output_scale**2
                )
                if self.regulariser is not None and isinstance(self.net, QNetwork):
                    loss = loss + self.regulariser.penalty(self.net, states[idx.numpy()], ttg[idx.numpy()])
                opt.zero_grad()
                loss.backward()
                opt.step()
        if self.prior is not None:
            self._zero_output()
        self.version += 1
        self.summary.warm_start_loss = float(loss.detach())
        return self.summary.warm_start_loss

    def _zero_output(self) -> None:
        """Network output 0 everywhere: Q is the reward prior alone."""
        self.net.zero_output()

    # ----------------------------------------------------------------------------------- training
    def train(self, progress: bool = True) -> AnyQNetwork:
        cfg = self.config
        start = time.perf_counter()
        if cfg.warm_start_epochs > 0:
            self.warm_start()
        target_net = copy.deepcopy(self.net)
        total_updates = max(cfg.episodes * self.instance.horizon * cfg.updates_per_step, 1)
        opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda k: (
                cfg.lr_floor_fraction
                + (1 - cfg.lr_floor_fraction) * 0.5 * (1 + np.cos(np.pi * min(k / total_updates, 1.0)))
            ),
        )
        selector = SELECTORS[cfg.act_selector](**_selector_options(cfg))
        replay = Replay(cfg.replay_size, self.instance.n_arms, self.instance.n_actions)
        elites: deque[tuple[int, ...]] = deque(maxlen=cfg.elite_candidates)
        env = self.instance.make_env(training=True)

        acting = self.linear_policy(self.net)

        def best_action(states: np.ndarray, ttg: int) -> np.ndarray:
            if acting is not None:
                decision = acting.decide(np.concatenate([states, [ttg]]))
            else:
                decision = selector.select(self.state_q(states, ttg))
            s = self.summary
            s.act_decisions += 1
            s.act_seconds += decision.seconds
            s.act_status_counts[decision.status] = s.act_status_counts.get(decision.status, 0) + 1
            key = tuple(int(v) for v in decision.action)
            if key in elites:
                elites.remove(key)
            elites.append(key)
            return decision.action

        snapshot_at = _snapshot_episodes(cfg.episodes, cfg.snapshots)
        snapshots: list[tuple[int, AnyQNetwork]] = []
        if 0 in snapshot_at:
            snapshots.append((0, copy.deepcopy(self.net)))
        bar = tqdm(range(cfg.episodes), desc="DQN", disable=not progress, unit="episode")
        for episode in bar:
            epsilon = max(
                cfg.epsilon_end,
                cfg.epsilon_start
                - (cfg.epsilon_start - cfg.epsilon_end) * episode / max(cfg.episodes * cfg.epsilon_decay_fraction, 1),
            )
            pool = np.stack([self.model.sample(self.rng) for _ in range(cfg.random_candidates)])
            obs, _ = env.reset(seed=int(self.rng.integers(2**31)))
            states, ttg = obs[:-1], int(obs[-1])
            greedy = best_action(states, ttg)
            episode_return = 0.0
            for _ in range(self.instance.horizon):
                action = (
                    self.instance.drop_unavailable(states, self.model.sample(self.rng))
                    if self.rng.uniform() < epsilon
                    else greedy
                )
                obs, realised, done, _, info = env.step(action)
                reward = info["expected_reward"] if cfg.expected_reward_targets else realised
                episode_return += info["expected_reward"]
                next_states, next_ttg = obs[:-1], int(obs[-1])
                greedy = best_action(next_states, next_ttg) if not done else np.zeros_like(action)
                replay.add(states, ttg, action, reward, next_states, next_ttg, float(done), greedy)
                states, ttg = next_states, next_ttg
                if replay.count >= cfg.batch_size:
                    candidates = np.concatenate([np.array(list(elites), dtype=np.float32), pool], axis=0)
                    for _ in range(cfg.updates_per_step):
                        loss = self._learn(replay, target_net, opt, candidates)
                        sched.step()
                        self.summary.gradient_steps += 1
                        if self.summary.gradient_steps % cfg.target_update_every == 0:
                            target_net.load_state_dict(self.net.state_dict())
                    self.summary.losses.append(loss)
                if done:
                    break
            self.summary.episode_returns.append(episode_return)
            bar.set_postfix(
                ret=f"{episode_return:.2f}",
                eps=f"{epsilon:.2f}",
                loss=f"{np.mean(self.summary.losses[-20:]) if self.summary.losses else 0:.4f}",
            )
            if episode + 1 in snapshot_at and episode + 1 < cfg.episodes:
                snapshots.append((episode + 1, copy.deepcopy(self.net)))
        if snapshots:
            finalists = [*snapshots, (cfg.episodes, self.net)]
            if self.regulariser is not None:  # score what will be deployed: the pruned networks
                finalists = [
                    (e, self.regulariser.pruned_copy(net) if isinstance(net, QNetwork) else net) for e, net in finalists
                ]
            self._select_snapshot(finalists, selector)
        if self.regulariser is not None and isinstance(self.net, QNetwork):
            self.regulariser.finish(self.net)
            self.version += 1
        self.summary.seconds = time.perf_counter() - start
        return self.net

    def linear_policy(self, net: AnyQNetwork):
        """For an arm-wise network on a planner prior of an arm-pull domain: the planner with the network's pull
        gains added (:mod:`engine.planners.corrected`), whose decisions are Q's exact argmax through the planner's
        scale paths (oracle, dominance reduction); None otherwise."""
        if not isinstance(net, ArmwiseQNetwork) or not isinstance(self.prior, PlannerPrior):
            return None
        if not self.prior.planner.structure.is_pull:
            return None
        from engine.planners.corrected import CorrectedPlanner
        from engine.planners.policy import PlannerPolicy

        return PlannerPolicy("", self.instance, CorrectedPlanner(self.prior.planner, net, self.encoder))

    def _select_snapshot(self, snapshots: list[tuple[int, AnyQNetwork]], selector) -> None:
        """Keep the snapshot whose exact greedy policy has the best mean expected return on held-out episodes
        (the same episode seeds for every snapshot: common random numbers). With a prior the first snapshot
        is the prior's own policy (the planner): a later one replaces it only when its paired gain over it
        exceeds ``selection_z`` standard errors, so noise never trades the planner for a worse network. Then
        :func:`~engine.sequoia.planner_candidates.choose_final` confirms that choice against every planner on
        fresh episodes."""
        seeds = self.rng.integers(2**31, size=self.config.validation_episodes)
        returns = [self.policy_returns(net, seeds, selector, version=-1 - i) for i, (_, net) in enumerate(snapshots)]
        scores = [float(np.mean(r)) for r in returns]
        best = int(np.argmax(scores))
        has_prior_snapshot = self.prior is not None and snapshots[0][0] == 0
        if (
            has_prior_snapshot
            and best != 0
            and not significant_gain(returns[best] - returns[0], self.config.selection_z)
        ):
            best = 0  # noise never trades the planner for a network
        s = self.summary
        s.snapshot_episodes = [e for e, _ in snapshots]
        s.snapshot_returns = scores
        best = choose_final(self, snapshots, best, has_prior_snapshot, seeds, returns[best], selector)
        s.selected_snapshot = s.snapshot_episodes[best]
        self.net.load_state_dict(snapshots[best][1].state_dict())
        self.version += 1

    def policy_returns(self, net: AnyQNetwork, seeds: np.ndarray, selector, version: int) -> np.ndarray:
        """Expected return of the greedy policy of ``net`` (decided by ``selector``) on one episode per seed."""
        policy = self.linear_policy(net) or _NetworkPolicy(self, net, selector, version)
        run = evaluate(self.instance, {"snapshot": policy}, episode_seeds=list(seeds), progress=False)
        return np.asarray(run.methods["snapshot"].expected, dtype=float)

    def policy_return(self, net: AnyQNetwork, seeds: np.ndarray, selector, version: int) -> float:
        """Mean of :meth:`policy_returns`."""
        return float(np.mean(self.policy_returns(net, seeds, selector, version)))

    def _learn(
        self, replay: Replay, target_net: AnyQNetwork, opt: torch.optim.Optimizer, candidates: np.ndarray
    ) -> float:
        cfg = self.config
        idx = self.rng.integers(0, replay.count, cfg.batch_size)
        q = self._q(self.net, replay.actions[idx], replay.states[idx], replay.ttg[idx])
        with torch.no_grad():
            cands = torch.as_tensor(
                np.concatenate(
                    [replay.next_best[idx][:, None, :], np.broadcast_to(candidates, (len(idx), *candidates.shape))],
                    axis=1,
                ),
                dtype=torch.float32,
            )
            s2, t2 = replay.next_states[idx], np.maximum(replay.next_ttg[idx], 1)
            feats, context = network_inputs(self.net, self.encoder, self.prior, s2, t2)
            online = self.net.candidate_values(cands, feats, context)
            evaluated = target_net.candidate_values(cands, feats, context)
            if self.prior is not None:
                prior = self.prior.values(s2, t2, cands.numpy())
                online, evaluated = online + prior, evaluated + prior
            if self.instance.state_dependent:  # candidates unavailable at the next state cannot be the argmax
                closed = self.instance.uses_unavailable(s2[:, None, :], cands.numpy())
                online = online.masked_fill(torch.as_tensor(closed), float("-inf"))
            next_value = evaluated.gather(1, online.argmax(dim=1, keepdim=True)).squeeze(1)
            y = (
                torch.as_tensor(replay.rewards[idx])
                + cfg.gamma * (1.0 - torch.as_tensor(replay.done[idx])) * next_value
            )
        loss = torch.nn.functional.smooth_l1_loss(q / self.net.output_scale, y / self.net.output_scale)
        if self.regulariser is not None and isinstance(self.net, QNetwork):
            loss = loss + self.regulariser.penalty(self.net, replay.states[idx], replay.ttg[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
        opt.step()
        self.version += 1
        return float(loss.detach())


def _selector_options(cfg: DQNConfig) -> dict:
    """Solver settings for the exact selectors used while acting."""
    if cfg.act_selector in ("mip", "auto"):
        return {"mip_rel_gap": cfg.act_mip_gap, "time_limit": cfg.act_time_limit}
    return {}


def _snapshot_episodes(episodes: int, snapshots: int) -> set[int]:
    """Episode counts after which a snapshot is taken (0 = after the warm start); empty when disabled."""
    if snapshots < 2 or episodes < 1:
        return set()
    return {round(k * episodes / (snapshots - 1)) for k in range(snapshots)}


class _NetworkPolicy:
    """The exact greedy policy of one network (a training snapshot) as an evaluation policy."""

    def __init__(self, trainer: DQNTrainer, net: AnyQNetwork, selector, version: int) -> None:
        self.trainer, self.net, self.selector, self.version = trainer, net, selector, version

    def act(self, states: np.ndarray, time_to_go: int, rng: np.random.Generator):
        return self.selector.select(self.trainer.state_q(states, time_to_go, self.net, self.version))
