"""The map from the actor's proxy in [-1, 1]^n to an integer action: the whole box, or a residual around a prior.

Residual policy learning (Silver et al. 2018; Johannink et al. 2019): the actor outputs a bounded correction
to a fixed, known-good controller instead of the action itself. For inventory the controller is the tuned
base-stock policy (``engine.baselines.boxes.tune_base_stock``, a deterministic function of the instance), so

    action = round(clip(levels + radius * proxy, 0, amax))

and an actor whose proxy is 0 (zero-initialised head) IS the base-stock policy. ``lower .. upper`` (the
levels +- radius, clipped to the box) is the trust region: exploration, the neighbourhood search and the
MILP stay inside it. Without a prior (``kind="box"``) the proxy spans the whole box (the MinMax map).

The prior is data (``to_dict`` / ``from_dict``) stored in checkpoints and recomputable from the instance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.baselines.boxes import tune_base_stock
from scenarios.boxes.inventory import InventoryInstance
from scenarios.errors import InvalidInputError
from solvers.search.neighbourhood import minmax_action

PRIORS = ("none", "base_stock")


@dataclass
class ResidualPrior:
    """Proxy ``p`` -> ``round(clip(center + radius * p, 0, amax))``; ``kind="box"`` is the plain MinMax map."""

    kind: str
    center: np.ndarray  # (n,) float: the action at proxy 0
    radius: np.ndarray  # (n,) float: the action moves at most this far from ``center``
    amax: np.ndarray  # (n,) int

    def __post_init__(self) -> None:
        self.center = np.asarray(self.center, dtype=float).reshape(-1)
        self.radius = np.asarray(self.radius, dtype=float).reshape(-1)
        self.amax = np.asarray(self.amax, dtype=np.int64).reshape(-1)
        self._center = torch.as_tensor(self.center, dtype=torch.float32)
        self._radius = torch.as_tensor(self.radius, dtype=torch.float32)
        self._amax = torch.as_tensor(self.amax, dtype=torch.long)
        self.lower = torch.as_tensor(np.clip(np.floor(self.center - self.radius), 0, self.amax), dtype=torch.long)
        self.upper = torch.as_tensor(np.clip(np.ceil(self.center + self.radius), 0, self.amax), dtype=torch.long)
        self.span = (self.upper - self.lower).clamp(min=1).float()

    # ---------------------------------------------------------------------------------- construction
    @classmethod
    def box(cls, amax: np.ndarray) -> ResidualPrior:
        """No prior: the proxy spans ``[0, amax]`` (MinMax)."""
        amax = np.asarray(amax, dtype=np.int64).reshape(-1)
        return cls("box", amax / 2.0, amax / 2.0, amax)

    @classmethod
    def base_stock(cls, instance, radius: float, amax: np.ndarray) -> ResidualPrior:
        """Residual around the tuned base-stock levels of an inventory instance (model or dict)."""
        if isinstance(instance, dict):
            instance = InventoryInstance.model_validate(instance)
        if not isinstance(instance, InventoryInstance):
            raise InvalidInputError("prior", "base_stock needs an inventory instance")
        levels = tune_base_stock(instance).levels.astype(float)
        return cls("base_stock", levels, np.full(levels.size, float(radius)), amax)

    @classmethod
    def make(cls, kind: str, radius: float, amax: np.ndarray, instance=None) -> ResidualPrior:
        """The prior named by ``ActorCriticConfig.prior`` (``none`` -> the whole box)."""
        if kind == "none":
            return cls.box(amax)
        if kind == "base_stock":
            return cls.base_stock(instance, radius, amax)
        raise InvalidInputError("prior", f"expected one of {', '.join(PRIORS)}, got {kind!r}")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "center": self.center.tolist(), "radius": self.radius.tolist()}

    @classmethod
    def from_dict(cls, data: dict, amax: np.ndarray) -> ResidualPrior:
        return cls(data["kind"], np.asarray(data["center"]), np.asarray(data["radius"]), amax)

    # ---------------------------------------------------------------------------------- maps
    @property
    def is_box(self) -> bool:
        return self.kind == "box"

    def scale(self, actions: torch.Tensor) -> torch.Tensor:
        """The critic's view of integer actions: ``a / amax`` (box) or ``(a - lower) / (upper - lower)``, so
        that the trust region fills the critic's unit cube whatever its width."""
        if self.is_box:
            return actions.float() / self._amax
        return (actions.float() - self.lower) / self.span

    def scaled(self, proxy: torch.Tensor) -> torch.Tensor:
        """The unrounded action of a proxy in critic scaling (differentiable; the actor ascends through it)."""
        if self.is_box:
            return (proxy + 1.0) * 0.5
        return (self.continuous(proxy) - self.lower) / self.span

    def continuous(self, proxy: torch.Tensor) -> torch.Tensor:
        """The unrounded action of a proxy in action units (differentiable)."""
        if self.is_box:
            return (proxy + 1.0) * 0.5 * self._amax
        return torch.clamp(self._center + self._radius * proxy, min=0.0).minimum(self._amax.float())

    def to_action(self, proxy: torch.Tensor) -> torch.Tensor:
        """The base action (long): proxy clipped to [-1, 1], mapped and rounded."""
        if self.is_box:
            return minmax_action(proxy, self._amax)
        a = torch.round(self._center + self._radius * proxy.clamp(-1.0, 1.0)).long()
        return torch.minimum(torch.maximum(a, self.lower), self.upper)
