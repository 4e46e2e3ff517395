"""Closed walks on a graph: the time-expanded rows of a walk and their exact oracle.

Each step a closed walk of exactly T moves starts and ends at ``source``; a move follows an edge or waits at
the current node. An entry (node) can be pulled only if the walk visits it, and at most B entries are pulled.

Rows over [a ; y], y[t,u,v] = the walk goes u -> v at step t (u == v: waits), time-expanded arcs kept only
where u is reachable from the source within t moves and the source reachable from v in the moves left:
    budget:          sum_j a_j <= B
    start:           sum_v y[0,source,v] = 1
    flow[t,v]:       sum_u y[t-1,u,v] - sum_w y[t,v,w] = 0          (t = 1..T-1)
    end:             sum_u y[T-1,u,source] = 1
    visit[j]:        a_j - sum_t sum_{u != j} y[t,u,j] <= 0         (j != source)

Exact oracle: an action is feasible iff sum a <= B and the shortest closed walk from the source through every
pulled node has at most T moves (waits pad the rest): a travelling-salesman question on hop distances over at
most B nodes, answered by bounds (round trips, an MST lower bound, an insertion + 2-opt tour) and otherwise
exactly by Held-Karp dynamic programming (numpy, by subset size), with the rows' MILP beyond 20 nodes.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import minimum_spanning_tree, shortest_path

from scenarios.action_model import ActionModel, Structure
from scenarios.constraints.row_stack import RowStack

_EXACT_DP_MAX = 20
_QUICK_DP_MAX = 12  # Held-Karp over 12 nodes: ~50k table entries, a few ms
_UNKNOWN = object()


def check_edges(edges: list[tuple[int, int]], n_nodes: int | None = None) -> None:
    """``ValueError("edges[k]: reason")`` for an edge with an endpoint below 0 or (given ``n_nodes``) above
    n - 1, a self-loop or a duplicate."""
    seen: set[tuple[int, int]] = set()
    for k, (u, v) in enumerate(edges):
        if min(u, v) < 0:
            raise ValueError(f"edges[{k}]: endpoints must be >= 0")
        if n_nodes is not None and max(u, v) >= n_nodes:
            raise ValueError(f"edges[{k}]: ({u}, {v}) has an endpoint outside [0, {n_nodes - 1}]")
        if u == v:
            raise ValueError(f"edges[{k}]: a self-loop; waiting at a node is always allowed")
        key = (min(u, v), max(u, v))
        if key in seen:
            raise ValueError(f"edges[{k}]: ({u}, {v}) is listed twice")
        seen.add(key)


class WalkGraph:
    """The nodes 0..n-1, undirected edges, source and budget of a walk; derived structures are cached."""

    def __init__(self, n_nodes: int, edges: list[tuple[int, int]], source: int, budget: int, moves: int | None = None):
        self.n_arms, self.edges, self.source, self.budget = n_nodes, [tuple(e) for e in edges], source, budget
        self.walk_length = 2 * budget if moves is None else moves
        self._cache: dict = {}

    def _memo(self, key: str, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

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

    def model(self) -> ActionModel:
        """The walk's rows with the exact :class:`WalkOracle`."""
        structure = Structure(
            "routing", {"budget": self.budget, "source": self.source, "walk_length": self.walk_length}
        )
        return self._memo(
            "model",
            lambda: dataclasses.replace(self.rows_model(), oracle=WalkOracle(self), structure=structure, _cache={}),
        )

    def rows_model(self) -> ActionModel:
        """The walk's rows alone (feasibility by MILP)."""
        return self._memo("rows", self._build_rows)

    def _build_rows(self) -> ActionModel:
        J, T, s0 = self.n_arms, self.walk_length, self.source
        arcs = self.arcs()
        t, u, v = arcs.T
        ny = len(arcs)
        col = J + np.arange(ny)
        rows = RowStack(J, ny)
        add = rows.add

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
        return rows.model("routing", [f"y[{a},{b},{c}]" for a, b, c in arcs.tolist()], downward_closed=True)


class WalkOracle:
    """Exact feasibility of the routing domain: the shortest closed walk through the pulled nodes <= T."""

    def __init__(self, graph: WalkGraph) -> None:
        self.dist, self.pred = graph.hop_distances()
        self.source, self.budget, self.T = graph.source, graph.budget, graph.walk_length
        self.n = graph.n_arms
        self.reach = np.flatnonzero(2 * self.dist[self.source] <= self.T)
        self.col = {(int(t), int(u), int(v)): k for k, (t, u, v) in enumerate(graph.arcs())}
        self.n_y = len(self.col)
        self._graph = graph
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
        """An order of the pulled nodes whose closed tour from the source has at most T moves, or None (remembered
        for the last action: is_feasible then certificate search once)."""
        key = np.asarray(a, dtype=np.int8).tobytes()
        last = getattr(self, "_last", None)
        if last is None or last[0] != key:
            self._last = (key, self._route(np.asarray(a), exact=True))
        return self._last[1]

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
            self._fallback = self._graph.rows_model()
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
