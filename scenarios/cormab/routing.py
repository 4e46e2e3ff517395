"""Path-constrained coRMAB: arms are graph nodes visited by a closed walk (REFERENCE.md 1.2 item 3).

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

Exact oracle: an action is feasible iff sum a <= B and the shortest closed walk from the source through every
pulled node has at most T moves (waits pad the rest): a travelling-salesman question on hop distances over at
most B nodes, answered by bounds (round trips, an MST lower bound, an insertion + 2-opt tour) and otherwise
exactly by Held-Karp dynamic programming (numpy, by subset size), with the rows' MILP beyond 20 nodes.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import networkx as nx
import numpy as np
import scipy.sparse as sp
from pydantic import Field, PrivateAttr, model_validator
from scipy.sparse.csgraph import minimum_spanning_tree, shortest_path

from scenarios.action_model import ActionModel
from scenarios.cormab.instance import ArmModel, CoRMABInstance, generate_arms
from scenarios.errors import InfeasibleActionError

#: Source node per London tube subgraph size: 0 and 10 are the reference's (README); 0 for the others.
TUBE_SOURCES = {20: 0, 40: 10, 60: 0, 80: 0, 100: 0}
#: Budget per London tube subgraph size: the reference's (J, B) = (20, 5), (40, 10), (100, 20); J/4 between.
TUBE_BUDGETS = {20: 5, 40: 10, 60: 15, 80: 20, 100: 20}
_EXACT_DP_MAX = 20
_QUICK_DP_MAX = 12  # Held-Karp over 12 nodes: ~50k table entries, a few ms
_UNKNOWN = object()


class RoutingInstance(CoRMABInstance):
    """Arms on the nodes 0..J-1 of an undirected graph; a closed walk of 2B moves from ``source``."""

    edges: list[tuple[int, int]] = Field(description="undirected edges (u, v) between arm nodes, u != v")
    source: int = Field(0, ge=0, description="node where every walk starts and ends")
    budget: int = Field(description="arms pulled per step (at most); the walk has 2*budget moves", ge=1)
    _cache: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> RoutingInstance:
        J = self.n_arms
        seen: set[tuple[int, int]] = set()
        for k, (u, v) in enumerate(self.edges):
            if not (0 <= u < J and 0 <= v < J):
                raise ValueError(f"edges: edge {k} = ({u}, {v}) has an endpoint outside [0, {J - 1}]")
            if u == v:
                raise ValueError(f"edges: edge {k} is a self-loop; waiting at a node is always allowed")
            key = (min(u, v), max(u, v))
            if key in seen:
                raise ValueError(f"edges: edge {k} = ({u}, {v}) is listed twice")
            seen.add(key)
        if self.source >= J:
            raise ValueError(f"source: must be a node in [0, {J - 1}], got {self.source}")
        return self

    def __eq__(self, other: object) -> bool:  # the private cache is not part of the data
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    def _memo(self, key: str, build):
        """Cache derived structures; the cache is dropped when the graph, source or budget change."""
        stamp = (self.n_arms, self.source, self.budget, tuple(self.edges))
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
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        rng = np.random.default_rng([seed, 3])
        pts = rng.uniform(size=(n_arms, 2))
        dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
        tree = minimum_spanning_tree(dist + 1e-12 * (1 - np.eye(n_arms))).tocoo()
        edges = {(min(u, v), max(u, v)) for u, v in zip(tree.row.tolist(), tree.col.tolist(), strict=True)}
        near = np.argsort(dist, axis=1)[:, 1:4]
        cands = sorted({(min(u, v), max(u, v)) for u in range(n_arms) for v in near[u].tolist()} - edges)
        n_extra = min(len(cands), round(0.45 * n_arms))
        if n_extra:
            edges |= {cands[k] for k in rng.choice(len(cands), n_extra, replace=False).tolist()}
        source = int(np.argmin(np.linalg.norm(pts - 0.5, axis=1)))
        return cls(arms=generate_arms(n_arms, budget, seed, horizon), edges=sorted(edges), source=source, budget=budget)

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

    def hop_distances(self) -> tuple[np.ndarray, np.ndarray]:
        """(J, J) hop distances (inf when disconnected) and shortest-path predecessors."""

        def build() -> tuple[np.ndarray, np.ndarray]:
            J = self.n_arms
            e = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
            adj = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(J, J))
            return shortest_path(adj, directed=False, unweighted=True, return_predecessors=True)

        return self._memo("dist", build)

    def arcs(self) -> np.ndarray:
        """(n_y, 3) array of (t, u, v) time-expanded arcs (u == v: wait), in auxiliary-column order."""
        return self._memo("arcs", self._build_arcs)

    def _build_arcs(self) -> np.ndarray:
        J, T = self.n_arms, self.walk_length
        d = self.hop_distances()[0][self.source]
        e = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        u = np.concatenate([e[:, 0], e[:, 1], np.arange(J)])
        v = np.concatenate([e[:, 1], e[:, 0], np.arange(J)])
        order = np.lexsort((v, u))
        u, v = u[order], v[order]
        t = np.arange(T)[:, None]
        keep = (d[u][None, :] <= t) & (d[v][None, :] <= T - 1 - t)
        tt, k = np.nonzero(keep)
        return np.stack([tt, u[k], v[k]], axis=1)

    def action_model(self) -> ActionModel:
        return self._memo("model", self._build_model)

    def _build_model(self) -> ActionModel:
        J, T, s0 = self.n_arms, self.walk_length, self.source
        arcs = self.arcs()
        t, u, v = arcs.T
        ny = len(arcs)
        col = J + np.arange(ny)
        blocks, lo, hi, names = [], [], [], []

        def add(rows, cols, vals, n_rows, lower, upper, labels) -> None:
            blocks.append(sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, J + ny)))
            lo.append(np.broadcast_to(np.asarray(lower, float), (n_rows,)))
            hi.append(np.broadcast_to(np.asarray(upper, float), (n_rows,)))
            names.extend(labels)

        add(np.zeros(J, int), np.arange(J), np.ones(J), 1, -np.inf, self.budget, ["budget"])
        first = t == 0
        add(np.zeros(first.sum(), int), col[first], np.ones(first.sum()), 1, 1.0, 1.0, ["start"])
        # flow[t, v] for t >= 1: arcs into v at step t-1 minus arcs out of v at step t
        into, out = t < T - 1, t >= 1
        key_in, key_out = (t[into] + 1) * J + v[into], t[out] * J + u[out]
        keys, inv = np.unique(np.concatenate([key_in, key_out]), return_inverse=True)
        add(
            inv,
            np.concatenate([col[into], col[out]]),
            np.concatenate([np.ones(into.sum()), -np.ones(out.sum())]),
            len(keys),
            0.0,
            0.0,
            [f"flow[{k // J},{k % J}]" for k in keys.tolist()],
        )
        last = (t == T - 1) & (v == s0)
        add(np.zeros(last.sum(), int), col[last], np.ones(last.sum()), 1, 1.0, 1.0, ["end"])
        others = np.flatnonzero(np.arange(J) != s0)
        row_of = np.cumsum(np.arange(J) != s0) - 1  # visit row of each non-source node
        enter = (u != v) & (v != s0)
        add(
            np.concatenate([row_of[others], row_of[v[enter]]]),
            np.concatenate([others, col[enter]]),
            np.concatenate([np.ones(len(others)), -np.ones(enter.sum())]),
            len(others),
            -np.inf,
            0.0,
            [f"visit[{j}]" for j in others.tolist()],
        )
        return ActionModel(
            name="routing",
            n_actions=J,
            A=sp.vstack(blocks, format="csr"),
            row_lower=np.concatenate(lo),
            row_upper=np.concatenate(hi),
            row_names=names,
            aux_lower=np.zeros(ny),
            aux_upper=np.ones(ny),
            aux_integer=np.ones(ny, bool),
            aux_names=[f"y[{a},{b},{c}]" for a, b, c in arcs.tolist()],
            downward_closed=True,
            oracle=WalkOracle(self),
        )

    def walk(self, action: object) -> list[int]:
        """A closed walk of exactly T + 1 nodes (T moves) from the source through every pulled node.

        Consecutive nodes are equal (a wait) or adjacent. Raises InfeasibleActionError when none exists.
        """
        model = self.action_model()
        a = model.validate(action)
        oracle: WalkOracle = model.oracle  # type: ignore[assignment]
        walk = oracle.walk(a)
        if walk is None:
            raise InfeasibleActionError(model.violations(a))
        return walk


class WalkOracle:
    """Exact feasibility of the routing domain: the shortest closed walk through the pulled nodes <= T."""

    def __init__(self, instance: RoutingInstance) -> None:
        self.dist, self.pred = instance.hop_distances()
        self.source, self.budget, self.T = instance.source, instance.budget, instance.walk_length
        self.n = instance.n_arms
        self.reach = np.flatnonzero(2 * self.dist[self.source] <= self.T)
        self.col = {(int(t), int(u), int(v)): k for k, (t, u, v) in enumerate(instance.arcs())}
        self.n_y = len(self.col)
        self._instance = instance
        self._fallback: ActionModel | None = None

    # ---------------------------------------------------------------------------- tours
    def tour_length(self, order: list[int]) -> float:
        stops = [self.source, *order, self.source]
        return float(self.dist[stops[:-1], stops[1:]].sum())

    def _improve(self, order: list[int]) -> list[int]:
        """2-opt on the closed tour source -> order -> source."""
        best = list(order)
        improved = True
        while improved and len(best) > 1:
            improved = False
            stops = [self.source, *best, self.source]
            d = self.dist
            for i in range(1, len(stops) - 2):
                for k in range(i + 1, len(stops) - 1):
                    delta = (
                        d[stops[i - 1], stops[k]]
                        + d[stops[i], stops[k + 1]]
                        - d[stops[i - 1], stops[i]]
                        - d[stops[k], stops[k + 1]]
                    )
                    if delta < -1e-9:
                        stops[i : k + 1] = stops[i : k + 1][::-1]
                        improved = True
            best = stops[1:-1]
        return best

    def _insert(self, order: list[int], node: int) -> tuple[list[int], float]:
        """Cheapest insertion of ``node`` into the tour; returns the new order and its length."""
        stops = np.array([self.source, *order, self.source])
        extra = self.dist[stops[:-1], node] + self.dist[node, stops[1:]] - self.dist[stops[:-1], stops[1:]]
        k = int(np.argmin(extra))
        new = [*order[:k], node, *order[k:]]
        return new, self.tour_length(order) + float(extra[k])

    def heuristic_tour(self, nodes: list[int]) -> list[int]:
        order: list[int] = []
        far_first = sorted(nodes, key=lambda x: -self.dist[self.source, x])
        for x in far_first:
            order, _ = self._insert(order, x)
        return self._improve(order)

    def exact_tour(self, nodes: list[int], cap: float) -> list[int] | None:
        """Held-Karp over ``nodes``: a shortest tour if its length is <= ``cap``, else None."""
        n = len(nodes)
        if n == 0:
            return []
        idx = np.array([self.source, *nodes])
        D = self.dist[np.ix_(idx, idx)]
        big = int(min(cap, 60_000)) + 1  # every length above cap is stored as cap + 1
        dtype = np.uint8 if big < 255 else np.uint16
        Dn = np.minimum(D[1:, 1:], big).astype(np.int32)
        masks = np.arange(1 << n, dtype=np.int64)
        pop = np.bitwise_count(masks.astype(np.uint64)).astype(np.int64)
        dp = np.full((1 << n, n), big, dtype=dtype)
        dp[1 << np.arange(n), np.arange(n)] = np.minimum(D[0, 1:], big)
        for p in range(2, n + 1):
            layer = masks[pop == p]
            for v in range(n):
                with_v = layer[(layer >> v) & 1 == 1]
                prev = dp[with_v ^ (1 << v)].astype(np.int32)
                dp[with_v, v] = np.minimum((prev + Dn[:, v]).min(axis=1), big)
        full = (1 << n) - 1
        total = dp[full].astype(np.int64) + D[1:, 0]
        last = int(np.argmin(total))
        if total[last] > cap:
            return None
        order, mask = [last], full
        while mask != 1 << last:  # walk back through the table
            prev_mask = mask ^ (1 << last)
            cost = dp[prev_mask].astype(np.int64) + Dn[:, last]
            cost[[(prev_mask >> u) & 1 == 0 for u in range(n)]] = np.iinfo(np.int64).max
            last, mask = int(np.argmin(cost)), prev_mask
            order.append(last)
        return [nodes[k] for k in order[::-1]]

    def route(self, a: np.ndarray) -> list[int] | None:
        """An order of the pulled nodes whose closed tour from the source has at most T moves, or None."""
        return self._route(np.asarray(a), exact=True)

    def quick_feasible(self, a: np.ndarray) -> bool | None:
        """Feasibility when cheap to settle (bounds, the insertion + 2-opt tour, Held-Karp over at most
        ``_QUICK_DP_MAX`` nodes), else None: what greedy construction uses to test each candidate addition."""
        order = self._route(np.asarray(a), exact=False)
        return None if order is _UNKNOWN else order is not None

    def _route(self, a: np.ndarray, exact: bool):
        nodes = [int(x) for x in np.flatnonzero(a > 0) if x != self.source]
        if len(nodes) + (a[self.source] > 0) > self.budget:
            return None
        if not nodes:
            return []
        if np.any(2 * self.dist[self.source, nodes] > self.T):
            return None
        order = self.heuristic_tour(nodes)
        if self.tour_length(order) <= self.T:
            return order
        idx = np.array([self.source, *nodes])
        if minimum_spanning_tree(self.dist[np.ix_(idx, idx)]).sum() > self.T:  # a tour is at least the MST
            return None
        if len(nodes) <= (_EXACT_DP_MAX if exact else _QUICK_DP_MAX):
            return self.exact_tour(nodes, self.T)
        return self._milp_route(a) if exact else _UNKNOWN

    def _milp_route(self, a: np.ndarray) -> list[int] | None:
        """Beyond the DP's reach: solve the rows with the action fixed (exact, slower)."""
        if self._fallback is None:
            self._fallback = dataclasses.replace(self._instance.action_model(), oracle=None, _cache={}, _solver=None)
        y = self._fallback.certificate(a)
        if y is None:
            return None
        walk = self._y_to_walk(y)
        seen: dict[int, None] = {}
        for x in walk:
            if a[x] > 0 and x != self.source:
                seen.setdefault(x)
        return list(seen)

    def _y_to_walk(self, y: np.ndarray) -> list[int]:
        walk = [self.source] + [0] * self.T
        for (t, _, v), k in self.col.items():
            if y[k] > 0.5:
                walk[t + 1] = v
        return walk

    # --------------------------------------------------------------------- oracle protocol
    def walk(self, a: np.ndarray) -> list[int] | None:
        order = self.route(a)
        if order is None:
            return None
        walk = [self.source]
        for target in [*order, self.source]:
            leg = []
            x = target
            while x != walk[-1]:
                leg.append(x)
                x = int(self.pred[walk[-1], x])
            walk += leg[::-1]
        return walk + [self.source] * (self.T + 1 - len(walk))

    def is_feasible(self, a: np.ndarray) -> bool:
        return self.route(np.asarray(a)) is not None

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        walk = self.walk(np.asarray(a))
        if walk is None:
            return None
        y = np.zeros(self.n_y)
        y[[self.col[(t, walk[t], walk[t + 1])] for t in range(self.T)]] = 1.0
        return y

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Reachable nodes in random order, each kept when cheapest insertion (then 2-opt, then the exact DP
        for small sets) still fits in T moves: feasible, and maximal unless the DP was skipped."""
        a = np.zeros(self.n, dtype=np.int64)
        order: list[int] = []
        for x in rng.permutation(self.reach).tolist():
            if a.sum() >= self.budget:
                break
            if x == self.source:
                a[x] = 1
                continue
            new, length = self._insert(order, x)
            if length > self.T:
                new = self._improve(new)
                if self.tour_length(new) > self.T:
                    exact = self.exact_tour([*order, x], self.T) if len(order) < 12 else None
                    if exact is None:
                        continue
                    new = exact
            order = new
            a[x] = 1
        return a
