"""A continuous maze driven by n binary actuators (../shared/REFERENCE.md section 2, environment 2).

Actuator ``i`` pushes along angle ``2 pi i / n``. The step displacement is ``step_size * u / max(1, |u|)``
with ``u = sum_i a_i (cos, sin)(2 pi i / n)`` plus Gaussian noise, so many actions give the same move and
the joint action space has 2^n elements. Walls are axis-aligned rectangles: the agent stops at the last free
point of its path. Teleport tiles move an agent that lands on them to a target point, which makes Q
non-smooth in the action. Reaching the goal disc pays ``goal_reward`` and ends the episode; every step
pays ``step_reward`` plus ``actuator_cost`` per active actuator, plus the potential-based shaping term
``progress_reward * (dist_before - dist_after)`` (straight-line distance to the goal; it leaves the optimal
policy unchanged, Ng et al. 1999, and makes short training runs informative).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scenarios.action_model import ActionModel
from scenarios.boxes.env import IntegerBoxEnv
from scenarios.validation import as_int_vector

_SUBSTEPS = 8  # collision checks along each move


def _check_rect(rect: list[float], field: str) -> None:
    if len(rect) != 4:
        raise ValueError(f"{field}: a rectangle is [x0, y0, x1, y1], got {len(rect)} numbers")
    x0, y0, x1, y1 = rect
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise ValueError(f"{field}: need 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {rect}")


def _check_point(p: list[float], field: str) -> None:
    if len(p) != 2 or not all(0.0 <= v <= 1.0 for v in p):
        raise ValueError(f"{field}: a point is [x, y] inside the unit square, got {p}")


class Teleport(BaseModel):
    """Landing inside ``source`` moves the agent to ``target``."""

    model_config = ConfigDict(extra="forbid")

    source: list[float] = Field(description="rectangle [x0, y0, x1, y1]")
    target: list[float] = Field(description="point [x, y]")

    @model_validator(mode="after")
    def _check(self) -> Teleport:
        _check_rect(self.source, "source")
        _check_point(self.target, "target")
        return self


class MazeInstance(BaseModel):
    """Unit-square maze: actuators, start, goal disc, walls and teleport tiles, as plain data."""

    model_config = ConfigDict(extra="forbid")

    n_actuators: int = Field(ge=2, le=64, description="number of binary actuators")
    start: list[float] = Field(description="start point [x, y]")
    goal: list[float] = Field(description="goal centre [x, y]")
    goal_radius: float = Field(0.08, gt=0.0, le=0.5)
    step_size: float = Field(0.08, gt=0.0, le=0.5, description="largest displacement per step")
    noise: float = Field(0.005, ge=0.0, le=0.1, description="std of the Gaussian motion noise")
    walls: list[list[float]] = Field(default_factory=list, description="rectangles [x0, y0, x1, y1]")
    teleports: list[Teleport] = Field(default_factory=list)
    step_reward: float = Field(-0.1, description="reward of every step")
    goal_reward: float = Field(10.0, description="reward of reaching the goal")
    actuator_cost: float = Field(0.0, ge=0.0, description="cost per active actuator per step")
    progress_reward: float = Field(2.0, ge=0.0, description="shaping weight on the distance gained")
    horizon: int = Field(100, ge=1, le=100_000)
    seed: int | None = Field(None, description="seed of the first reset when reset() is called without one")

    @field_validator("start", "goal")
    @classmethod
    def _point(cls, v: list[float], info) -> list[float]:
        _check_point(v, info.field_name)
        return v

    @model_validator(mode="after")
    def _check(self) -> MazeInstance:
        for k, rect in enumerate(self.walls):
            _check_rect(rect, f"walls.{k}")
        if self._blocked(np.asarray([self.start]))[0]:
            raise ValueError("start: lies inside a wall")
        if self._blocked(np.asarray([self.goal]))[0]:
            raise ValueError("goal: lies inside a wall")
        return self

    # ---------------------------------------------------------------------------------- construction
    @classmethod
    def generate(
        cls, n_actuators: int = 12, seed: int | None = 0, teleport: bool = False, horizon: int = 100
    ) -> MazeInstance:
        """Two walls with seeded gaps between a bottom-left start and a top-right goal.

        ``teleport=True`` adds a shortcut tile (to just below the goal) and a trap tile (back to the start).
        """
        if not isinstance(n_actuators, int) or not 2 <= n_actuators <= 64:
            raise ValueError("n_actuators: must be an integer in [2, 64]")
        rng = np.random.default_rng([0 if seed is None else seed, 7])
        g1, g2 = rng.uniform(0.05, 0.75, 2)
        walls = [
            [0.0, 0.30, g1, 0.34],
            [g1 + 0.2, 0.30, 1.0, 0.34],
            [0.0, 0.62, g2, 0.66],
            [g2 + 0.2, 0.62, 1.0, 0.66],
        ]
        walls = [w for w in walls if w[2] - w[0] > 1e-6]
        teleports = []
        if teleport:
            teleports = [
                Teleport(source=[0.55, 0.08, 0.65, 0.18], target=[0.85, 0.75]),
                Teleport(source=[0.25, 0.40, 0.40, 0.50], target=[0.1, 0.1]),
            ]
        return cls(
            n_actuators=n_actuators,
            start=[0.1, 0.1],
            goal=[0.9, 0.9],
            walls=walls,
            teleports=teleports,
            horizon=horizon,
            seed=seed,
        )

    def make_env(self, training: bool = False) -> MazeEnv:
        return MazeEnv(self, training=training)

    def action_model(self) -> ActionModel:
        """Every binary vector is feasible: no rows."""
        n = self.n_actuators
        return ActionModel(
            name="maze",
            n_actions=n,
            A=sp.csr_matrix((0, n)),
            row_lower=np.zeros(0),
            row_upper=np.zeros(0),
            row_names=[],
            aux_lower=np.zeros(0),
            aux_upper=np.zeros(0),
            aux_integer=np.zeros(0, bool),
        )

    # ---------------------------------------------------------------------------------- dynamics
    def directions(self) -> np.ndarray:
        """Unit push of each actuator, shape (n, 2)."""
        angle = 2.0 * np.pi * np.arange(self.n_actuators) / self.n_actuators
        return np.stack([np.cos(angle), np.sin(angle)], axis=1)

    def displacement(self, action: np.ndarray) -> np.ndarray:
        """Noise-free move of an action (n,) or a batch (..., n) -> (..., 2)."""
        u = np.asarray(action, dtype=float) @ self.directions()
        norm = np.linalg.norm(u, axis=-1, keepdims=True)
        return self.step_size * u / np.maximum(norm, 1.0)

    def _blocked(self, points: np.ndarray) -> np.ndarray:
        """Whether each point (..., 2) is outside the square or inside a wall."""
        x, y = points[..., 0], points[..., 1]
        out = (x < 0.0) | (x > 1.0) | (y < 0.0) | (y > 1.0)
        if self.walls:
            w = np.asarray(self.walls)
            inside = (
                (x[..., None] >= w[:, 0])
                & (x[..., None] <= w[:, 2])
                & (y[..., None] >= w[:, 1])
                & (y[..., None] <= w[:, 3])
            )
            out |= inside.any(-1)
        return out

    def move(self, position: np.ndarray, displacement: np.ndarray) -> np.ndarray:
        """Walk ``displacement`` from ``position``, stopping at the last free point; then teleport."""
        frac = np.arange(1, _SUBSTEPS + 1)[:, None] / _SUBSTEPS
        path = position + frac * displacement
        blocked = self._blocked(path)
        first = int(np.argmax(blocked)) if blocked.any() else _SUBSTEPS
        new = path[first - 1] if first > 0 else np.asarray(position, dtype=float)
        for tp in self.teleports:
            x0, y0, x1, y1 = tp.source
            if x0 <= new[0] <= x1 and y0 <= new[1] <= y1:
                return np.asarray(tp.target, dtype=float)
        return new

    def distance(self, position: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(position) - np.asarray(self.goal)))

    def at_goal(self, position: np.ndarray) -> bool:
        return self.distance(position) <= self.goal_radius


class MazeEnv(IntegerBoxEnv):
    """Observation: position [x, y] (float32). Action: MultiBinary(n_actuators)."""

    instance: MazeInstance

    def __init__(self, instance: MazeInstance, training: bool = False) -> None:
        self.instance = instance
        self.training = training
        self.observation_space = gym.spaces.Box(low=0.0, high=1.0, shape=(2,), dtype=np.float32)
        self.action_space = gym.spaces.MultiBinary(instance.n_actuators)
        self._model = instance.action_model()
        self._pos = np.asarray(instance.start, dtype=float)
        self._t = 0
        self._seeded = False

    def action_model(self) -> ActionModel:
        return self._model

    def observation_scale(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(2, 0.5), np.full(2, 0.5)

    def reward_scale_hint(self) -> float:
        """Rewards are already O(1) per step (the goal pays ~10): no scaling."""
        return 1.0

    def observation(self) -> np.ndarray:
        return self._pos.astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and not self._seeded:
            seed = self.instance.seed
        super().reset(seed=seed)
        self._seeded = True
        options = options or {}
        self._pos = np.asarray(options.get("position", self.instance.start), dtype=float)
        if self._pos.shape != (2,) or self.instance._blocked(self._pos[None])[0]:
            from scenarios.errors import InvalidInputError

            raise InvalidInputError("position", "must be a free point [x, y] of the unit square")
        self._t = 0
        return self.observation(), {"t": 0}

    def step(self, action):
        if self._t >= self.instance.horizon:
            raise RuntimeError("episode is over: call reset() first")
        inst = self.instance
        a = as_int_vector(action, "action", inst.n_actuators, 0, 1)
        noise = self.np_random.normal(0.0, inst.noise, size=2)
        before = inst.distance(self._pos)
        self._pos = inst.move(self._pos, inst.displacement(a) + noise)
        self._t += 1
        reached = inst.at_goal(self._pos)
        reward = inst.step_reward - inst.actuator_cost * float(a.sum()) + (inst.goal_reward if reached else 0.0)
        reward += inst.progress_reward * (before - inst.distance(self._pos))
        truncated = not reached and self._t >= inst.horizon
        return self.observation(), float(reward), reached, truncated, {"t": self._t, "reached": reached}
