"""Routing: pulled entries are graph nodes that a closed walk from ``source`` must visit (see walks.py)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from scenarios.action_model import ActionModel
from scenarios.constraints.base import BlockBase
from scenarios.constraints.walks import WalkGraph, check_edges


class RoutingBlock(BlockBase):
    """A closed walk of ``moves`` (default 2 x budget) moves on an undirected graph over the action entries."""

    kind: Literal["routing"] = "routing"
    edges: list[tuple[int, int]] = Field(description="undirected edges (u, v) between entries, u != v")
    source: int = Field(0, ge=0, description="node where every walk starts and ends")
    budget: int = Field(ge=1, description="at most this many pulls per step")
    moves: int | None = Field(None, ge=1, description="moves of the walk (default 2 x budget)")
    _graphs: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _values(self) -> RoutingBlock:
        check_edges(self.edges)
        return self

    def check(self, n_actions: int) -> None:
        check_edges(self.edges, n_actions)
        if self.source >= n_actions:
            raise ValueError(f"source: must be a node in [0, {n_actions - 1}], got {self.source}")

    def graph(self, n_actions: int) -> WalkGraph:
        """The (cached) walk structure over ``n_actions`` nodes."""
        stamp = (n_actions, self.source, self.budget, self.moves, tuple(map(tuple, self.edges)))
        if stamp not in self._graphs:
            self.check(n_actions)
            self._graphs.clear()
            self._graphs[stamp] = WalkGraph(n_actions, self.edges, self.source, self.budget, self.moves)
        return self._graphs[stamp]

    def compile(self, n_actions: int) -> ActionModel:
        return self.graph(n_actions).model()

    def assignment(self, a: np.ndarray, aux: np.ndarray) -> dict[str, Any]:
        """``{"route": [nodes]}``: the closed walk, T + 1 nodes from the source back to it."""
        graph = self.graph(len(a))
        walk = [graph.source] + [graph.source] * graph.walk_length
        for (t, _, v), y in zip(graph.arcs().tolist(), np.asarray(aux, dtype=float).tolist(), strict=True):
            if y > 0.5:
                walk[t + 1] = int(v)
        return {"route": walk}
