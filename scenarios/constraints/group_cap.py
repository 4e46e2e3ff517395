"""Group caps: "at most k per district": each action entry belongs to at most one group, each group has a cap.

Rows over [a]:   group_cap[g]:  sum_{j in group g} a_j <= caps[g]
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.constraints.base import BlockBase, rows_model


class GroupCapBlock(BlockBase):
    """``groups[j]`` is entry j's group (-1: none); at most ``caps[g]`` pulls in group g."""

    kind: Literal["group_cap"] = "group_cap"
    groups: list[int] = Field(description="group of each action entry (0..G-1, or -1 for none)")
    caps: list[int] = Field(description="at most this many pulls per group, >= 0")

    @model_validator(mode="after")
    def _values(self) -> GroupCapBlock:
        for g, cap in enumerate(self.caps):
            if cap < 0:
                raise ValueError(f"caps[{g}]: must be >= 0")
        for j, g in enumerate(self.groups):
            if g < -1 or g >= len(self.caps):
                raise ValueError(f"groups[{j}]: must be -1 or a group in [0, {len(self.caps) - 1}], got {g}")
        return self

    def check(self, n_actions: int) -> None:
        if len(self.groups) != n_actions:
            raise ValueError(f"groups: expected {n_actions} entries (one per action entry), got {len(self.groups)}")

    def compile(self, n_actions: int) -> ActionModel:
        self.check(n_actions)
        g = np.asarray(self.groups, dtype=np.int64)
        member = np.flatnonzero(g >= 0)
        G = len(self.caps)
        A = sp.csr_matrix((np.ones(member.size), (g[member], member)), shape=(G, n_actions))
        names = [f"group_cap[{k}]" for k in range(G)]
        return rows_model("group_cap", n_actions, A, np.full(G, -np.inf), np.asarray(self.caps, float), names, True)

    def assignment(self, a: np.ndarray, aux: np.ndarray) -> dict[str, Any]:
        """``{"groups": {"g": pulls in group g}}``."""
        g = np.asarray(self.groups, dtype=np.int64)
        on = np.asarray(a) > 0
        return {"groups": {str(k): int(np.sum(on & (g == k))) for k in range(len(self.caps))}}
