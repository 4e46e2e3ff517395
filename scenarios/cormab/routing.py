"""Path-constrained coRMAB: arms are graph nodes visited by a closed walk (../shared/REFERENCE.md 1.2 item 3).

Each step a closed walk of exactly T = 2B moves starts and ends at ``source``; a move follows an edge or
waits at the current node (there is no teleporting: the reference's self-loop-free rows let idle steps jump
anywhere). An arm can be pulled only if the walk visits it, and at most B arms are pulled.

Rows over [a ; y], y[t,u,v] = the walk goes u -> v at step t (u == v: waits), time-expanded arcs kept only
where u is reachable from the source within t moves and the source reachable from v in the moves left:
    budget:          sum_j a_j <= B
    start:           sum_v y[0,source,v] = 1
    flow[t,v]:       sum_u y[t-1,u,v] - sum_w y[t,v,w] = 0          (t = 1..T-1)
    end:             sum_u y[T-1,u,source] = 1
    visit[j]:        a_j - sum_t sum_{u != j} y[t,u,j] <= 0         (j != source; empty beyond B hops)
Visits count moves *into* j, not steps spent at j: exact for 0/1 walks, and a tighter LP relaxation
(a fractional walk cannot pay for a visit by waiting). The source is always visited and has no row.

The rows and the exact oracle (bounds, insertion + 2-opt, Held-Karp, the rows' MILP beyond 20 nodes) are the
routing constraint block's: :mod:`scenarios.constraints.routing` and :mod:`scenarios.constraints.walks`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import networkx as nx
import numpy as np
from pydantic import Field, PrivateAttr, model_validator
from scipy.sparse.csgraph import minimum_spanning_tree

from scenarios.action_model import ActionModel
from scenarios.constraints.routing import RoutingBlock
from scenarios.constraints.walks import WalkGraph, WalkOracle, check_edges
from scenarios.cormab.instance import ArmModel, CoRMABInstance, generate_arms
from scenarios.errors import InfeasibleActionError

#: Source node per London tube subgraph size: 0 and 10 are the reference's (README); 0 for the others.
TUBE_SOURCES = {20: 0, 40: 10, 60: 0, 80: 0, 100: 0}
#: Budget per London tube subgraph size: the reference's (J, B) = (20, 5), (40, 10), (100, 20); J/4 between.
TUBE_BUDGETS = {20: 5, 40: 10, 60: 15, 80: 20, 100: 20}


def random_transit_graph(n_nodes: int, seed: int) -> tuple[list[tuple[int, int]], int]:
    """(edges, centre): stations uniform in the unit square, their Euclidean minimum spanning tree plus about
    0.45 J extra links between near neighbours (the tube subgraphs have 1.3-1.45 J edges); the centre is the
    station nearest the middle of the square."""
    if n_nodes < 1:
        raise ValueError("n_arms: must be at least 1")
    rng = np.random.default_rng([seed, 3])
    pts = rng.uniform(size=(n_nodes, 2))
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    tree = minimum_spanning_tree(dist + 1e-12 * (1 - np.eye(n_nodes))).tocoo()
    edges = {(min(u, v), max(u, v)) for u, v in zip(tree.row.tolist(), tree.col.tolist(), strict=True)}
    near = np.argsort(dist, axis=1)[:, 1:4]
    cands = sorted({(min(u, v), max(u, v)) for u in range(n_nodes) for v in near[u].tolist()} - edges)
    n_extra = min(len(cands), round(0.45 * n_nodes))
    if n_extra:
        edges |= {cands[k] for k in rng.choice(len(cands), n_extra, replace=False).tolist()}
    return sorted(edges), int(np.argmin(np.linalg.norm(pts - 0.5, axis=1)))


class RoutingInstance(CoRMABInstance):
    """Arms on the nodes 0..J-1 of an undirected graph; a closed walk of 2B moves from ``source``."""

    edges: list[tuple[int, int]] = Field(description="undirected edges (u, v) between arm nodes, u != v")
    source: int = Field(0, ge=0, description="node where every walk starts and ends")
    budget: int = Field(description="arms pulled per step (at most); the walk has 2*budget moves", ge=1)
    _cache: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> RoutingInstance:
        J = self.n_arms
        check_edges(self.edges, J)
        if self.source >= J:
            raise ValueError(f"source: must be a node in [0, {J - 1}], got {self.source}")
        return self

    def __eq__(self, other: object) -> bool:  # the private cache is not part of the data
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def _memo(self, key: str, build):
        """Cache derived structures; the cache is dropped when the graph, source or budget change."""
        stamp = (self.n_arms, self.source, self.budget, tuple(self.edges), tuple(map(repr, self.constraints)))
        if self._cache.get("stamp") != stamp:
            self._cache = {"stamp": stamp}  # a fresh dict: copies do not share it
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # ------------------------------------------------------------------------------ generators
    @classmethod
    def generate(cls, n_arms: int = 20, budget: int = 5, seed: int = 0, horizon: int = 20) -> RoutingInstance:
        """A random transit-like graph: stations uniform in the unit square, their Euclidean minimum spanning
        tree plus about 0.45 J extra links between near neighbours (the tube subgraphs have 1.3-1.45 J edges);
        the source is the station nearest the centre."""
        if budget < 1:
            raise ValueError("budget: must be at least 1 (the walk has 2*budget moves)")
        edges, source = random_transit_graph(n_arms, seed)
        return cls(arms=generate_arms(n_arms, budget, seed, horizon), edges=edges, source=source, budget=budget)

    @classmethod
    def from_networkx(
        cls,
        graph: nx.Graph,
        source: object,
        budget: int,
        arms: ArmModel | None = None,
        seed: int = 0,
        horizon: int = 20,
    ) -> RoutingInstance:
        """Any networkx graph (directed ones are made undirected; self-loops dropped), nodes relabelled
        0..J-1 in ``graph.nodes`` order; ``arms`` defaults to the reference distributions with ``seed``."""
        nodes = list(graph.nodes)
        if source not in graph:
            raise ValueError(f"source: {source!r} is not a node of the graph")
        index = {node: k for k, node in enumerate(nodes)}
        edges = sorted(
            {(min(index[u], index[v]), max(index[u], index[v])) for u, v in graph.to_undirected().edges if u != v}
        )
        if arms is None:
            arms = generate_arms(len(nodes), budget, seed, horizon)
        return cls(arms=arms, edges=edges, source=index[source], budget=budget)

    @classmethod
    def from_edge_csv(
        cls,
        path: str | Path,
        source: int | None = None,
        budget: int | None = None,
        seed: int = 0,
        horizon: int = 20,
    ) -> RoutingInstance:
        """Read a ``u,v[,minutes]`` edge list (minutes ignored: a move is one step) over integer node ids.

        ``source``/``budget`` default to the London tube conventions for J = 20..100 (TUBE_SOURCES,
        TUBE_BUDGETS; J = 60, 80, 100 use node 0) and to node 0 and max(1, J // 4) for other sizes.
        """
        try:
            with open(path, newline="") as fh:
                pairs = [(int(row["u"]), int(row["v"])) for row in csv.DictReader(fh)]
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"path: cannot read a u,v edge list from {path} ({exc})") from exc
        graph = nx.Graph()
        graph.add_nodes_from(sorted({x for e in pairs for x in e}))
        graph.add_edges_from(pairs)
        J = graph.number_of_nodes()
        if J == 0:
            raise ValueError(f"path: {path} has no edges")
        source = TUBE_SOURCES.get(J, 0) if source is None else source
        budget = TUBE_BUDGETS.get(J, max(1, J // 4)) if budget is None else budget
        return cls.from_networkx(graph, source, budget, seed=seed, horizon=horizon)

    # ------------------------------------------------------------------------------- structure
    @property
    def walk_length(self) -> int:
        """T = 2B moves per step."""
        return 2 * self.budget

    def graph(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(range(self.n_arms))
        g.add_edges_from(self.edges)
        return g

    def routing_block(self) -> RoutingBlock:
        """The domain's feasible set as one routing block (cached with the graph)."""
        return self._memo("block", lambda: RoutingBlock(edges=self.edges, source=self.source, budget=self.budget))

    def walk_graph(self) -> WalkGraph:
        """Hop distances, time-expanded arcs and the walk's rows (cached)."""
        return self.routing_block().graph(self.n_arms)

    def hop_distances(self) -> tuple[np.ndarray, np.ndarray]:
        """(J, J) hop distances (inf when disconnected) and shortest-path predecessors."""
        return self.walk_graph().hop_distances()

    def arcs(self) -> np.ndarray:
        """(n_y, 3) array of (t, u, v) time-expanded arcs (u == v: wait), in auxiliary-column order."""
        return self.walk_graph().arcs()

    def action_model(self) -> ActionModel:
        """One routing block (plus the user's constraints)."""
        return self._memo("model", lambda: self.compose_model("routing", [self.routing_block()]))

    def walk(self, action: object) -> list[int]:
        """A closed walk of exactly T + 1 nodes (T moves) from the source through every pulled node.

        Consecutive nodes are equal (a wait) or adjacent. Raises InfeasibleActionError when none exists.
        """
        model = self.action_model()
        a = model.validate(action)
        oracle = self.walk_graph().model().oracle
        if not isinstance(oracle, WalkOracle):
            raise TypeError(f"the walk graph's model carries a {type(oracle).__name__}, not a WalkOracle")
        walk = oracle.walk(a) if model.is_feasible(a) else None
        if walk is None:
            raise InfeasibleActionError(model.violations(a))
        return walk
