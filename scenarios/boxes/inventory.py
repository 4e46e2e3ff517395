"""Joint inventory replenishment with order-up-to actions (../shared/REFERENCE.md section 2, environment 1).

Each step the action sets an order-up-to level ``S_i`` in ``{0..max_level}`` per item. Zero lead time:
``order_i = max(S_i - inv_i, 0)`` arrives at once, then Poisson demand ``D_i`` is served (unmet demand is
backordered) and ``inv_i <- max(S_i, inv_i) - D_i``. The step cost is

    order_cost * sum_i order_i + fixed_cost * [any order] + holding_cost * sum_i inv_i^+
    + backorder_cost * sum_i inv_i^-

and the reward is its negative. Backlog is capped at ``max_backlog`` units per item (demand beyond it is lost,
still charged); no sensible policy comes near the cap. Demand is drawn every step whatever the action, so
equal seeds give common random numbers across policies.
"""

from __future__ import annotations

from functools import cached_property

import gymnasium as gym
import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.stats import poisson

from scenarios.boxes.env import IntegerBoxEnv
from scenarios.errors import InvalidInputError
from scenarios.validation import as_int_vector
from solvers.formulations.separable_reward import SeparableReward


class InventoryInstance(BaseModel):
    """Items (Poisson demand rates), cost rates, the action box and the episode length, as plain data."""

    model_config = ConfigDict(extra="forbid")

    demand_rates: list[float] = Field(description="Poisson demand rate per item and step, one entry per item")
    initial_inventory: list[int] = Field(description="inventory of each item at reset")
    max_level: int = Field(66, ge=1, le=10_000, description="order-up-to levels lie in {0..max_level}")
    order_cost: float = Field(10.0, ge=0.0, description="cost per unit ordered")
    fixed_cost: float = Field(75.0, ge=0.0, description="cost of a step in which any item orders")
    holding_cost: float = Field(1.0, ge=0.0, description="cost per unit on hand at the end of a step")
    backorder_cost: float = Field(19.0, ge=0.0, description="cost per unit backordered at the end of a step")
    horizon: int = Field(100, ge=1, le=100_000, description="steps per episode (then truncated)")
    max_backlog: int = Field(1000, ge=1, description="backlog cap per item")
    seed: int | None = Field(None, description="seed of the first reset when reset() is called without one")

    @model_validator(mode="after")
    def _check(self) -> InventoryInstance:
        n = len(self.demand_rates)
        if n < 1:
            raise ValueError("demand_rates: at least one item is required")
        rates = np.asarray(self.demand_rates, dtype=float)
        if not np.all(np.isfinite(rates)) or np.any(rates < 0):
            raise ValueError("demand_rates: rates must be finite and non-negative")
        if len(self.initial_inventory) != n:
            raise ValueError(
                f"initial_inventory: expected {n} entries (one per item), got {len(self.initial_inventory)}"
            )
        inv = np.asarray(self.initial_inventory)
        if np.any(inv > self.max_level) or np.any(inv < -self.max_backlog):
            raise ValueError(f"initial_inventory: entries must lie in [-max_backlog, {self.max_level}]")
        return self

    # ---------------------------------------------------------------------------------- construction
    @classmethod
    def generate(
        cls, n_items: int = 5, seed: int | None = 0, horizon: int = 100, initial_inventory: int = 25
    ) -> InventoryInstance:
        """The reference instance: Poisson(20) demand for even items, Poisson(10) for odd ones."""
        if not isinstance(n_items, int) or n_items < 1:
            raise ValueError("n_items: must be a positive integer")
        rates = [20.0 if i % 2 == 0 else 10.0 for i in range(n_items)]
        return cls(demand_rates=rates, initial_inventory=[initial_inventory] * n_items, horizon=horizon, seed=seed)

    def make_env(self, training: bool = False) -> InventoryEnv:
        return InventoryEnv(self, training=training)

    # ---------------------------------------------------------------------------------- dynamics
    @property
    def n_items(self) -> int:
        return len(self.demand_rates)

    @property
    def rates(self) -> np.ndarray:
        return np.asarray(self.demand_rates, dtype=float)

    @property
    def n_actions_log10(self) -> float:
        """log10 of the number of joint actions, (max_level + 1)^n."""
        return self.n_items * float(np.log10(self.max_level + 1))

    def sample_demand(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Poisson demand of shape ``shape + (n_items,)``."""
        return rng.poisson(self.rates, size=(*shape, self.n_items)).astype(np.int64)

    def transition(
        self, inventory: np.ndarray, levels: np.ndarray, demand: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Next inventory and step cost; broadcasts over leading batch dimensions (``(..., n)`` -> ``(...)``)."""
        inventory = np.asarray(inventory, dtype=np.int64)
        orders = np.maximum(np.asarray(levels, dtype=np.int64) - inventory, 0)
        after = np.maximum(inventory + orders - np.asarray(demand, dtype=np.int64), -self.max_backlog)
        cost = (
            self.order_cost * orders.sum(-1)
            + self.fixed_cost * (orders > 0).any(-1)
            + self.holding_cost * np.maximum(after, 0).sum(-1)
            + self.backorder_cost * np.maximum(-after, 0).sum(-1)
        )
        return after, cost

    # ---------------------------------------------------------------------------------- reward model
    @cached_property
    def _post_decision_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Per item, for every post-order level ``y`` in ``[-max_backlog, max_level]``: the expected holding and
        backorder cost of the step and the expected next inventory, two arrays (n, max_backlog + max_level + 1)."""
        y = np.arange(-self.max_backlog, self.max_level + 1)
        cost, nxt = np.empty((self.n_items, y.size)), np.empty((self.n_items, y.size))
        for i, rate in enumerate(self.rates):
            d = np.arange(int(poisson.ppf(1.0 - 1e-12, rate)) + 2)
            p = poisson.pmf(d, rate)
            p[-1] += 1.0 - p.sum()  # the far tail sits on the last point, so the weights sum to one
            after = np.maximum(y[:, None] - d[None, :], -self.max_backlog)
            cost[i] = (self.holding_cost * np.maximum(after, 0) + self.backorder_cost * np.maximum(-after, 0)) @ p
            nxt[i] = after @ p
        return cost, nxt

    def _item_rewards(
        self,
        inventory: np.ndarray,
        levels: np.ndarray,
        potential: np.ndarray | None,
        gamma: float,
    ) -> np.ndarray:
        """Per item, the exact expected (shaped) step reward without the fixed cost of order-up-to ``levels``:
        ``levels`` is (B, n) (one action per state) or (B, n, L) (L candidate levels per item)."""
        if inventory.size and (inventory.min() < -self.max_backlog or inventory.max() > self.max_level):
            raise InvalidInputError(
                "state", f"inventories must lie in [-{self.max_backlog}, {self.max_level}] (max_backlog, max_level)"
            )
        if levels.size and (levels.min() < 0 or levels.max() > self.max_level):
            raise InvalidInputError("action", f"order-up-to levels must lie in [0, {self.max_level}] (max_level)")
        inv = inventory if levels.ndim == inventory.ndim else inventory[..., None]
        post = np.maximum(levels, inv)  # y = max(S, inv)
        cost, nxt = self._post_decision_tables
        items = np.arange(self.n_items).reshape(-1, *[1] * (levels.ndim - inventory.ndim))
        col = post + self.max_backlog
        reward = -self.order_cost * (post - inv) - cost[items, col]
        if potential is not None:
            w = np.asarray(potential, dtype=float).reshape(items.shape)
            reward = reward + gamma * w * nxt[items, col] - w * inv
        return reward

    def expected_reward(
        self,
        inventory: np.ndarray,
        levels: np.ndarray,
        potential: np.ndarray | None = None,
        gamma: float = 1.0,
    ) -> np.ndarray:
        """The exact expected (shaped, with ``potential``) step reward of actions ``levels`` (B, n) in states
        ``inventory`` (B, n) -> (B,); the value of :meth:`reward_model` without building its tables."""
        inv = np.asarray(inventory, dtype=np.int64)
        levels = np.asarray(levels, dtype=np.int64)
        separable = self._item_rewards(inv, levels, potential, gamma).sum(-1)
        return separable - self.fixed_cost * (levels > inv).any(-1)

    def reward_model(
        self,
        inventory: np.ndarray,
        potential: np.ndarray | None = None,
        gamma: float = 1.0,
    ) -> SeparableReward:
        """The exact expected step reward of every action in states ``inventory`` (B, n) (the fixed cost is the
        charge, paid when some ``S_i > inv_i``). With a linear ``potential`` w the shaped reward
        ``r + gamma w . s' - w . s`` (Ng et al. 1999), still separable over items."""
        inv = np.asarray(inventory, dtype=np.int64).reshape(-1, self.n_items)
        levels = np.broadcast_to(np.arange(self.max_level + 1), (*inv.shape, self.max_level + 1))
        tables = self._item_rewards(inv, levels, potential, gamma)
        return SeparableReward(
            torch.as_tensor(tables, dtype=torch.float32),
            torch.as_tensor(inv, dtype=torch.float32),
            torch.full((inv.shape[0],), float(self.fixed_cost)),
        )


class InventoryEnv(IntegerBoxEnv):
    """Observation: inventory per item (negative = backlog), float32. Action: order-up-to levels."""

    instance: InventoryInstance

    def __init__(self, instance: InventoryInstance, training: bool = False) -> None:
        self.instance = instance
        self.training = training
        n, top = instance.n_items, instance.max_level
        self.observation_space = gym.spaces.Box(
            low=-float(instance.max_backlog), high=float(top), shape=(n,), dtype=np.float32
        )
        self.action_space = gym.spaces.MultiDiscrete(np.full(n, top + 1, dtype=np.int64))
        self._inventory = np.asarray(instance.initial_inventory, dtype=np.int64)
        self._t = 0
        self._seeded = False

    # hints read by the learners (plain numbers, stored in their checkpoints)
    def observation_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """(center, scale) that maps typical observations to about [-1, 1]."""
        n = self.instance.n_items
        return np.zeros(n), np.full(n, float(self.instance.max_level))

    def reward_scale_hint(self) -> float:
        """About 1 / |typical step reward| (order cost of the mean demand plus holding)."""
        inst = self.instance
        typical = (inst.order_cost + inst.holding_cost) * inst.rates.sum() + inst.fixed_cost
        return 1.0 / max(typical, 1e-9)

    def potential_weights(self) -> np.ndarray:
        """Linear shaping potential ``phi(s) = w . s`` with ``w = order_cost``: stock on hand is worth what it
        cost to order. ``r + gamma phi(s') - phi(s)`` (Ng et al. 1999) keeps every policy's ranking and
        moves the order cost of stock kept for later from the next step into this one."""
        return np.full(self.instance.n_items, float(self.instance.order_cost))

    def observation(self) -> np.ndarray:
        return self._inventory.astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and not self._seeded:
            seed = self.instance.seed
        super().reset(seed=seed)
        self._seeded = True
        options = options or {}
        inv = options.get("inventory", self.instance.initial_inventory)
        self._inventory = as_int_vector(
            inv, "inventory", self.instance.n_items, -self.instance.max_backlog, self.instance.max_level
        )
        self._t = 0
        return self.observation(), {"t": 0}

    def step(self, action):
        if self._t >= self.instance.horizon:
            raise RuntimeError("episode is over: call reset() first")
        levels = as_int_vector(action, "action", self.instance.n_items, 0, self.instance.max_level)
        demand = self.instance.sample_demand(self.np_random)
        before = self._inventory
        self._inventory, cost = self.instance.transition(before, levels, demand)
        self._t += 1
        info = {"cost": float(cost), "orders": np.maximum(levels - before, 0), "demand": demand, "t": self._t}
        truncated = self._t >= self.instance.horizon
        return self.observation(), -float(cost), False, truncated, info
