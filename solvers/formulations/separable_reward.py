"""A known expected one-step reward that is separable over action coordinates, plus one fixed charge.

For a batch of states ``b`` and integer actions ``a`` in a box:

    r_b(a) = sum_i tables[b, i, a_i] - charge[b] * [exists i: a_i > thresholds[b, i]]

Joint inventory replenishment has exactly this form (order, holding and backorder costs per item; the fixed
ordering cost is paid when any item orders, i.e. when ``S_i > inv_i`` for some item). A critic can then be
``Q(s, a) = r_s(a) + C(s, a)``: the reward model is exact and the network learns only the continuation.
The neighbourhood search scores moves on it incrementally and the box MILP models it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SeparableReward:
    """Per-state tables ``(B, n, L)`` over action values ``0..L-1``, thresholds ``(B, n)``, charges ``(B,)``."""

    tables: torch.Tensor
    thresholds: torch.Tensor
    charge: torch.Tensor

    def __post_init__(self) -> None:
        self.tables = torch.as_tensor(self.tables, dtype=torch.float32)
        self.thresholds = torch.as_tensor(self.thresholds, dtype=torch.float32)
        self.charge = torch.as_tensor(self.charge, dtype=torch.float32).reshape(-1)
        if self.tables.ndim != 3:
            raise ValueError(f"tables: expected shape (B, n, L), got {tuple(self.tables.shape)}")
        B, n, _ = self.tables.shape
        if self.thresholds.shape != (B, n):
            raise ValueError(f"thresholds: expected shape ({B}, {n}), got {tuple(self.thresholds.shape)}")
        if self.charge.numel() == 1 and B != 1:
            self.charge = self.charge.expand(B).clone()
        if self.charge.shape != (B,):
            raise ValueError(f"charge: expected shape ({B},), got {tuple(self.charge.shape)}")
        if torch.any(self.charge < 0) or not torch.all(torch.isfinite(self.charge)):
            raise ValueError("charge: must be finite and non-negative")

    @property
    def batch(self) -> int:
        return int(self.tables.shape[0])

    @property
    def n(self) -> int:
        return int(self.tables.shape[1])

    def active(self, actions: torch.Tensor) -> torch.Tensor:
        """Which coordinates trigger the charge, (B, n) bool."""
        return actions.float() > self.thresholds

    def charge_off(self, actions: torch.Tensor) -> torch.Tensor:
        """The actions with every active coordinate lowered onto its threshold (rounded down): the nearest
        point that pays no charge (for inventory: order nothing), before any box is imposed."""
        top = float(self.tables.shape[2] - 1)  # thresholds beyond the tables (even infinite) bind nothing
        return torch.minimum(actions.long(), torch.floor(self.thresholds.clamp(-1.0, top)).long())

    def value(self, actions: torch.Tensor) -> torch.Tensor:
        """``r_b(a_b)`` for integer actions (B, n) -> (B,)."""
        a = actions.long().reshape(self.batch, self.n)
        separable = self.tables.gather(2, a[:, :, None]).squeeze(2).sum(1)
        return separable - self.charge * self.active(a).any(1)

    def interpolate(self, actions: torch.Tensor) -> torch.Tensor:
        """The separable part at continuous actions (B, n), linear between lattice points (differentiable);
        the fixed charge is left out (it is a step)."""
        L = self.tables.shape[2]
        x = actions.clamp(0.0, L - 1.0)
        lo = x.detach().floor().clamp(max=L - 2).long() if L > 1 else torch.zeros_like(x, dtype=torch.long)
        t_lo = self.tables.gather(2, lo[:, :, None]).squeeze(2)
        if L == 1:
            return t_lo.sum(1)
        t_hi = self.tables.gather(2, (lo + 1)[:, :, None]).squeeze(2)
        return (t_lo + (x - lo.float()) * (t_hi - t_lo)).sum(1)

    def expand(self, batch: int) -> SeparableReward:
        """One state's model repeated ``batch`` times (to evaluate many actions of one state)."""
        if self.batch != 1:
            raise ValueError("expand: only a single-state model can be expanded")
        return SeparableReward(
            self.tables.expand(batch, -1, -1), self.thresholds.expand(batch, -1), self.charge.expand(batch)
        )

    def scaled(self, factor: float) -> SeparableReward:
        """The same model in other units (e.g. times the critic's reward scale)."""
        if factor < 0:
            raise ValueError("factor: must be non-negative")
        return SeparableReward(self.tables * factor, self.thresholds, self.charge * factor)
