"""Baselines for large integer action boxes: k-nearest-neighbour (Wolpertinger; MinMax is the actor-critic's
``minmax`` selector) and, for the inventory scenario, operations-research yardsticks (tuned base-stock and
joint (s, S) policies).

Every policy is a callable ``obs -> action``. ``evaluate`` runs gymnasium episodes with explicit seeds
(common random numbers across policies); ``simulate_inventory`` is the vectorised simulator used to tune
the inventory policies on seeds disjoint from evaluation.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from scipy.stats import poisson

from scenarios.boxes.inventory import InventoryInstance
from scenarios.errors import InvalidInputError

Policy = Callable[[np.ndarray], np.ndarray]


# ------------------------------------------------------------------------------------------ evaluation
@dataclass
class EvalResult:
    """Episode returns and per-decision wall-clock and CPU seconds."""

    returns: np.ndarray
    seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cpu_seconds: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def mean(self) -> float:
        return float(self.returns.mean())

    @property
    def ci95(self) -> float:
        """Half-width of a normal 95% confidence interval of the mean return."""
        k = self.returns.size
        return float(1.96 * self.returns.std(ddof=1) / np.sqrt(k)) if k > 1 else float("nan")


def evaluate(env: gym.Env, policy: Policy, episodes: int = 10, seed: int = 10_000) -> EvalResult:
    """Undiscounted returns of ``policy`` over ``episodes`` episodes seeded ``seed, seed + 1, ...``."""
    returns, wall, cpu = [], [], []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            t0, c0 = time.perf_counter(), time.thread_time()
            action = policy(obs)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return EvalResult(np.asarray(returns), np.asarray(wall), np.asarray(cpu))


# ------------------------------------------------------------------------------------------------- k-NN
class KNNPolicy:
    """Wolpertinger: the k actions nearest (L2, in critic scaling) to the actor's proxy, best by the critic.

    The action set is materialised, so only boxes with at most ``max_actions`` elements are accepted.
    """

    def __init__(self, agent, k: int = 64, max_actions: int = 2**20, chunk: int = 2**16) -> None:
        amax = agent.amax.numpy()
        size = float(np.prod((amax + 1).astype(float)))
        if size > max_actions:
            raise InvalidInputError(
                "action_space", f"{size:.3g} actions do not fit in memory (max_actions={max_actions})"
            )
        self.agent, self.k, self.chunk = agent, int(min(k, size)), chunk
        grids = [np.arange(m + 1) for m in amax]
        self.actions = torch.as_tensor(np.array(list(itertools.product(*grids)), dtype=np.int64))
        self.scaled = agent.scale(self.actions)

    @torch.no_grad()
    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs_n = self.agent.normalise(obs)
        target = self.agent.proxy_scaled(obs_n)  # the actor's unrounded action in critic scaling
        best_d, best_i = None, None
        for s in range(0, self.scaled.shape[0], self.chunk):
            d = ((self.scaled[s : s + self.chunk] - target) ** 2).sum(1)
            vals, idx = torch.topk(d, min(self.k, d.numel()), largest=False)
            if best_d is not None and best_i is not None:
                vals, idx = torch.cat([best_d, vals]), torch.cat([best_i, idx + s])
                keep = torch.topk(vals, min(self.k, vals.numel()), largest=False).indices
                vals, idx = vals[keep], idx[keep]
            else:
                idx = idx + s
            best_d, best_i = vals, idx
        candidates = self.actions[best_i]
        q = self.agent.critic(obs_n.expand(candidates.shape[0], -1), self.agent.scale(candidates))
        return candidates[int(q.argmax())].numpy()


# ---------------------------------------------------------------------------------- inventory yardsticks
@dataclass
class BaseStockPolicy:
    """Order up to ``levels`` every step."""

    levels: np.ndarray
    name: str = "base-stock"

    def batch(self, inventory: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.levels, inventory.shape)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.levels, dtype=np.int64).copy()


@dataclass
class JointSSPolicy:
    """Joint (s, S): when any item is below its reorder point ``s_i``, raise every item to ``S_i``."""

    reorder: np.ndarray
    levels: np.ndarray
    name: str = "joint (s,S)"

    def batch(self, inventory: np.ndarray) -> np.ndarray:
        trigger = (inventory < self.reorder).any(-1, keepdims=True)
        return np.where(trigger, self.levels, 0)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.batch(np.asarray(obs)[None])[0].astype(np.int64)


def simulate_inventory(
    instance: InventoryInstance,
    policy,
    episodes: int = 64,
    seed: int = 123,
    demand: np.ndarray | None = None,
) -> np.ndarray:
    """Undiscounted episode returns of a batch policy (``policy.batch(inv) -> levels``), vectorised."""
    if demand is None:
        demand = instance.sample_demand(np.random.default_rng(seed), (instance.horizon, episodes))
    episodes = demand.shape[1]
    start = np.asarray(instance.initial_inventory, dtype=np.int64)
    inv = np.broadcast_to(start, (episodes, instance.n_items))
    total = np.zeros(episodes)
    for t in range(instance.horizon):
        inv, cost = instance.transition(inv, policy.batch(inv), demand[t])
        total -= cost
    return total


def newsvendor_levels(instance: InventoryInstance, periods: int = 1) -> np.ndarray:
    """Smallest S with P(D_periods <= S) >= b / (b + h) for Poisson demand over ``periods`` steps."""
    ratio = instance.backorder_cost / (instance.backorder_cost + instance.holding_cost)
    levels = poisson.ppf(ratio, instance.rates * periods)
    return np.clip(levels, 0, instance.max_level).astype(np.int64)


def _classes(instance: InventoryInstance) -> np.ndarray:
    """Items grouped by demand rate (policies share parameters within a group)."""
    return np.unique(instance.rates, return_inverse=True)[1]


def _coordinate_search(params: np.ndarray, score: Callable[[np.ndarray], float], lo: int, hi: int, radius: int):
    """Integer coordinate ascent of ``score`` over ``params`` in [lo, hi]."""
    best = score(params)
    improved = True
    while improved:
        improved = False
        for j in range(params.size):
            for v in range(max(lo, params[j] - radius), min(hi, params[j] + radius) + 1):
                trial = params.copy()
                trial[j] = v
                s = score(trial)
                if s > best + 1e-9:
                    best, params, improved = s, trial, True
    return params, best


def tune_base_stock(instance: InventoryInstance, episodes: int = 64, seed: int = 123) -> BaseStockPolicy:
    """Newsvendor levels (critical ratio b / (b + h)), then a per-demand-class grid search by simulation."""
    cls = _classes(instance)
    start = np.array([newsvendor_levels(instance)[cls == k][0] for k in range(cls.max() + 1)])
    demand = instance.sample_demand(np.random.default_rng(seed), (instance.horizon, episodes))

    def score(p: np.ndarray) -> float:
        return float(simulate_inventory(instance, BaseStockPolicy(p[cls]), demand=demand).mean())

    params, _ = _coordinate_search(start, score, 0, instance.max_level, radius=4)
    return BaseStockPolicy(params[cls])


def tune_joint_ss(instance: InventoryInstance, episodes: int = 64, seed: int = 123) -> JointSSPolicy:
    """Joint (s, S) per demand class, from one- and two-period newsvendor levels, tuned by simulation."""
    cls = _classes(instance)
    k = cls.max() + 1
    one = np.array([newsvendor_levels(instance, 1)[cls == j][0] for j in range(k)])
    two = np.array([newsvendor_levels(instance, 2)[cls == j][0] for j in range(k)])
    demand = instance.sample_demand(np.random.default_rng(seed), (instance.horizon, episodes))

    def score(p: np.ndarray) -> float:
        policy = JointSSPolicy(p[:k][cls], np.maximum(p[:k], p[k:])[cls])
        return float(simulate_inventory(instance, policy, demand=demand).mean())

    params, _ = _coordinate_search(np.concatenate([one, two]), score, 0, instance.max_level, radius=4)
    return JointSSPolicy(params[:k][cls], np.maximum(params[:k], params[k:])[cls])


def inventory_yardstick(instance: InventoryInstance, episodes: int = 64, seed: int = 123):
    """The better (on the tuning seeds) of the tuned base-stock and joint (s, S) policies, and both."""
    demand = instance.sample_demand(np.random.default_rng(seed), (instance.horizon, episodes))
    candidates = [tune_base_stock(instance, episodes, seed), tune_joint_ss(instance, episodes, seed)]
    scores = [simulate_inventory(instance, p, demand=demand).mean() for p in candidates]
    return candidates[int(np.argmax(scores))], candidates
