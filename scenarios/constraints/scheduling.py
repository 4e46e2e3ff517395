"""Scheduling: workers meet pulled entries in time slots where both are available.

Rows over [a ; x] with x_ijs = worker i serves entry j in slot s, a column only where worker i and entry j
are both available in slot s (K = ``assignments_per_pull``):
    budget:                       sum_j a_j <= B                (only when ``budget`` is given)
    worker_slot[i,s]:             sum_j x_ijs <= 1
    arm_assignments[j]:           sum_is x_ijs <= K
    pull_needs_assignments[j]:    K a_j - sum_is x_ijs <= 0
    assign_only_pulled[i,j,s]:    x_ijs - a_j <= 0
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from scenarios.action_model import ActionModel, Structure
from scenarios.constraints.base import BlockBase
from scenarios.constraints.matching import MatchingOracle
from scenarios.constraints.row_stack import RowStack


class SchedulingBlock(BlockBase):
    """Workers x slots with availabilities; a pulled entry needs K distinct (worker, slot) pairs it shares."""

    kind: Literal["scheduling"] = "scheduling"
    n_slots: int = Field(ge=1, le=1000, description="number of time slots")
    arm_slots: list[list[int]] = Field(description="slots in which each action entry is available")
    worker_slots: list[list[int]] = Field(description="slots in which each worker is available")
    assignments_per_pull: int = Field(2, ge=1, le=100, description="distinct (worker, slot) pairs a pull needs")
    budget: int | None = Field(None, ge=0, description="at most this many pulls (no limit when absent)")
    _triples: np.ndarray | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _values(self) -> SchedulingBlock:
        if not self.worker_slots:
            raise ValueError("worker_slots: at least one worker is required")
        for name in ("arm_slots", "worker_slots"):
            for k, slots in enumerate(getattr(self, name)):
                if len(set(slots)) != len(slots):
                    raise ValueError(f"{name}[{k}]: lists a slot twice")
                if any(s < 0 or s >= self.n_slots for s in slots):
                    raise ValueError(f"{name}[{k}]: a slot lies outside [0, {self.n_slots - 1}]")
        return self

    def check(self, n_actions: int) -> None:
        if len(self.arm_slots) != n_actions:
            raise ValueError(
                f"arm_slots: expected {n_actions} entries (one per action entry), got {len(self.arm_slots)}"
            )

    def availability(self) -> tuple[np.ndarray, np.ndarray]:
        """Boolean (workers x slots) and (entries x slots) availability matrices."""
        worker = np.zeros((len(self.worker_slots), self.n_slots), dtype=bool)
        arm = np.zeros((len(self.arm_slots), self.n_slots), dtype=bool)
        for i, slots in enumerate(self.worker_slots):
            worker[i, slots] = True
        for j, slots in enumerate(self.arm_slots):
            arm[j, slots] = True
        return worker, arm

    def triples(self) -> np.ndarray:
        """(n_x, 3) array of (worker, entry, slot) for every assignment variable, in column order (cached)."""
        if self._triples is None:
            worker, arm = self.availability()
            self._triples = np.argwhere(worker[:, None, :] & arm[None, :, :])
        return self._triples

    def compile(self, n_actions: int) -> ActionModel:
        self.check(n_actions)
        J, W, S, K = n_actions, len(self.worker_slots), self.n_slots, self.assignments_per_pull
        triples = self.triples()
        i, j, s = triples.T
        nx_ = len(triples)
        col = J + np.arange(nx_)
        stack = RowStack(J, nx_)
        add = stack.add

        if self.budget is not None:
            add(np.zeros(J, int), np.arange(J), np.ones(J), 1, -np.inf, self.budget, ["budget"])
        pairs, ws_row = np.unique(i * S + s, return_inverse=True)  # only (worker, slot) pairs in use
        add(
            ws_row,
            col,
            np.ones(nx_),
            len(pairs),
            -np.inf,
            1.0,
            [f"worker_slot[{p // S},{p % S}]" for p in pairs.tolist()],
        )
        add(j, col, np.ones(nx_), J, -np.inf, float(K), [f"arm_assignments[{a}]" for a in range(J)])
        add(
            np.concatenate([np.arange(J), j]),
            np.concatenate([np.arange(J), col]),
            np.concatenate([np.full(J, float(K)), -np.ones(nx_)]),
            J,
            -np.inf,
            0.0,
            [f"pull_needs_assignments[{a}]" for a in range(J)],
        )
        add(
            np.concatenate([np.arange(nx_)] * 2),
            np.concatenate([col, j]),
            np.concatenate([np.ones(nx_), -np.ones(nx_)]),
            nx_,
            -np.inf,
            0.0,
            [f"assign_only_pulled[{a},{b},{c}]" for a, b, c in triples.tolist()],
        )
        return stack.model(
            "scheduling",
            [f"x[{a},{b},{c}]" for a, b, c in triples.tolist()],
            downward_closed=True,
            oracle=MatchingOracle(triples, J, W, S, J if self.budget is None else self.budget, K),
            structure=Structure(
                "scheduling",
                {
                    "budget": J if self.budget is None else self.budget,
                    "need": K,
                    "n_slots": S,
                    "arm_slots": [list(v) for v in self.arm_slots],
                    "worker_slots": [list(v) for v in self.worker_slots],
                },
            ),
        )

    def assignment(self, a: np.ndarray, aux: np.ndarray) -> dict[str, Any]:
        """``{"slots": [{"worker": i, "slot": s, "arm": j}, ...]}``: who meets which pulled entry when."""
        used = np.round(np.asarray(aux, dtype=float)) > 0
        return {"slots": [{"worker": w, "slot": s, "arm": j} for w, j, s in self.triples()[used].tolist()]}
