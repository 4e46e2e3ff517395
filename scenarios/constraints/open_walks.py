"""Open walks whose start is chosen by the state: the rows and the exact oracle of a patrol's route.

Each step a walk of exactly T moves goes from the node where the patrol is (its start) to a node it chooses
(its end); a move follows an edge or waits. A node can be pulled only if the walk visits it, at most B nodes
are pulled. Action entries over J nodes: ``a`` (J pulls), ``b`` (J start indicators), ``e`` (J end indicators),
then the auxiliary arcs y[t,u,v] (the walk goes u -> v at step t; u == v waits), t = 0..T-1:

    budget:     sum_j a_j <= B
    one_start:  sum_u b_u = 1                    one_end:  sum_v e_v = 1
    start[u]:   sum_v y[0,u,v] - b_u = 0
    flow[t,v]:  sum_u y[t-1,u,v] - sum_w y[t,v,w] = 0          (t = 1..T-1)
    end[v]:     sum_u y[T-1,u,v] - e_v = 0
    visit[j]:   a_j - b_j - sum_t sum_{u != j} y[t,u,j] <= 0   (the start is visited)

Which start is allowed is not a row: the domain closes every start entry but the patrol's position
(``unavailable_entries``), and ``one_start`` then forces that one. The set is not downward closed.

Exact oracle: feasible iff one start u, one end v, at most B pulls, and the shortest walk u -> (the pulled
nodes other than u and v, in the best order) -> v has at most T moves: Held-Karp over hop distances.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, PrivateAttr
from scipy.sparse.csgraph import shortest_path

from scenarios.action_model import ActionModel
from scenarios.constraints.base import BlockBase
from scenarios.constraints.row_stack import RowStack
from scenarios.errors import EnumerationTimeoutError

#: Held-Karp over at most this many intermediate nodes; the rows' MILP beyond
_EXACT_DP_MAX = 12


class OpenWalkGraph:
    """J nodes, undirected edges, B pulls and T moves per step; derived structures cached."""

    def __init__(self, n_nodes: int, edges: list[tuple[int, int]], budget: int, moves: int) -> None:
        if moves < 1:
            raise ValueError(f"moves: must be at least 1, got {moves}")
        self.n, self.edges, self.budget, self.T = n_nodes, [tuple(e) for e in edges], budget, moves
        e = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        adj = sp.csr_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n_nodes, n_nodes))
        self.dist, self.pred = shortest_path(adj, directed=False, unweighted=True, return_predecessors=True)
        self._model: ActionModel | None = None
        self._rows: ActionModel | None = None

    @property
    def n_actions(self) -> int:
        return 3 * self.n

    def arcs(self) -> np.ndarray:
        """(n_y, 3) time-expanded arcs (t, u, v), u == v a wait, in auxiliary-column order."""
        J = self.n
        e = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        u = np.concatenate([e[:, 0], e[:, 1], np.arange(J)])
        v = np.concatenate([e[:, 1], e[:, 0], np.arange(J)])
        order = np.lexsort((v, u))
        pairs = np.stack([u[order], v[order]], axis=1)
        t = np.repeat(np.arange(self.T), len(pairs))
        return np.column_stack([t, np.tile(pairs, (self.T, 1))])

    def model(self) -> ActionModel:
        """The rows with the exact :class:`OpenWalkOracle` (cached)."""
        if self._model is None:
            self._model = dataclasses.replace(self._build_rows(), oracle=OpenWalkOracle(self), _cache={})
        return self._model

    def rows_model(self) -> ActionModel:
        """The rows alone (feasibility by MILP; cached)."""
        if self._rows is None:
            self._rows = self._build_rows()
        return self._rows

    def _build_rows(self) -> ActionModel:
        J, T = self.n, self.T
        arcs = self.arcs()
        t, u, v = arcs.T
        n_y = len(arcs)
        col = 3 * J + np.arange(n_y)
        rows = RowStack(3 * J, n_y)
        add = rows.add

        nodes = np.arange(J)
        add(np.zeros(J, int), nodes, np.ones(J), 1, -np.inf, self.budget, ["budget"])
        add(np.zeros(J, int), J + nodes, np.ones(J), 1, 1.0, 1.0, ["one_start"])
        add(np.zeros(J, int), 2 * J + nodes, np.ones(J), 1, 1.0, 1.0, ["one_end"])
        first = t == 0
        add(
            np.concatenate([u[first], nodes]),
            np.concatenate([col[first], J + nodes]),
            np.concatenate([np.ones(first.sum()), -np.ones(J)]),
            J,
            0.0,
            0.0,
            [f"start[{x}]" for x in range(J)],
        )
        if T > 1:
            into, out = t < T - 1, t >= 1
            key_in, key_out = t[into] * J + v[into], (t[out] - 1) * J + u[out]  # row (t, v) for t = 1..T-1
            add(
                np.concatenate([key_in, key_out]),
                np.concatenate([col[into], col[out]]),
                np.concatenate([np.ones(into.sum()), -np.ones(out.sum())]),
                (T - 1) * J,
                0.0,
                0.0,
                [f"flow[{k // J + 1},{k % J}]" for k in range((T - 1) * J)],
            )
        last = t == T - 1
        add(
            np.concatenate([v[last], nodes]),
            np.concatenate([col[last], 2 * J + nodes]),
            np.concatenate([np.ones(last.sum()), -np.ones(J)]),
            J,
            0.0,
            0.0,
            [f"end[{x}]" for x in range(J)],
        )
        enter = u != v
        add(
            np.concatenate([nodes, nodes, v[enter]]),
            np.concatenate([nodes, J + nodes, col[enter]]),
            np.concatenate([np.ones(J), -np.ones(J), -np.ones(enter.sum())]),
            J,
            -np.inf,
            0.0,
            [f"visit[{x}]" for x in range(J)],
        )
        return rows.model("patrol", [f"y[{a},{b},{c}]" for a, b, c in arcs.tolist()], downward_closed=False)


class OpenWalkOracle:
    """Exact feasibility, certificates, samples and enumeration of an :class:`OpenWalkGraph`'s actions."""

    def __init__(self, graph: OpenWalkGraph) -> None:
        self.graph = graph
        self.n, self.B, self.T = graph.n, graph.budget, graph.T
        self.dist, self.pred = graph.dist, graph.pred
        self.col = {(int(t), int(u), int(v)): k for k, (t, u, v) in enumerate(graph.arcs())}
        self.n_y = len(self.col)
        self._last: tuple[bytes, list[int] | None] | None = None

    # ------------------------------------------------------------------------------------ paths
    def path_length(self, start: int, stops: list[int], end: int) -> float:
        seq = [start, *stops, end]
        return float(self.dist[seq[:-1], seq[1:]].sum())

    def shortest_order(self, start: int, nodes: list[int], end: int) -> tuple[list[int], float]:
        """The order of ``nodes`` minimising the walk start -> nodes -> end, and its length (Held-Karp)."""
        n = len(nodes)
        if n == 0:
            return [], float(self.dist[start, end])
        if n <= 3:
            return min(
                ((list(p), self.path_length(start, list(p), end)) for p in itertools.permutations(nodes)),
                key=lambda x: x[1],
            )
        D = self.dist
        best: dict[tuple[int, int], tuple[float, int]] = {
            (1 << k, k): (float(D[start, nodes[k]]), -1) for k in range(n)
        }
        for size in range(2, n + 1):
            for combo in itertools.combinations(range(n), size):
                mask = sum(1 << k for k in combo)
                for last in combo:
                    prev = mask ^ (1 << last)
                    best[mask, last] = min(
                        (best[prev, k][0] + float(D[nodes[k], nodes[last]]), k) for k in combo if k != last
                    )
        full = (1 << n) - 1
        length, last = min((best[full, k][0] + float(D[nodes[k], end]), k) for k in range(n))
        order, mask = [], full
        while last >= 0:
            order.append(nodes[last])
            mask, last = mask ^ (1 << last), best[mask, last][1]
        return order[::-1], length

    def route(self, a: np.ndarray) -> list[int] | None:
        """[start, ordered stops..., end] of a feasible action, else None (remembered for the last action)."""
        key = np.asarray(a, dtype=np.int8).tobytes()
        if self._last is None or self._last[0] != key:
            self._last = (key, self._route(np.asarray(a)))
        return self._last[1]

    def _route(self, a: np.ndarray) -> list[int] | None:
        J = self.n
        if a.shape != (3 * J,) or np.any((a != 0) & (a != 1)):
            return None
        pulls, starts, ends = a[:J], np.flatnonzero(a[J : 2 * J]), np.flatnonzero(a[2 * J :])
        if len(starts) != 1 or len(ends) != 1 or pulls.sum() > self.B:
            return None
        return self._fitting_route(a, int(starts[0]), int(ends[0]))

    def _fitting_route(self, a: np.ndarray, u: int, v: int) -> list[int] | None:
        """[u, ordered stops..., v] when a walk from ``u`` through the pulls of ``a`` to ``v`` fits in T moves."""
        J = self.n
        stops = [int(x) for x in np.flatnonzero(a[:J]) if x not in (u, v)]
        if self.dist[u, v] > self.T or any(self.dist[u, x] + self.dist[x, v] > self.T for x in stops):
            return None
        if len(stops) > _EXACT_DP_MAX:
            b = a.copy()
            b[J:] = 0
            b[J + u] = b[2 * J + v] = 1
            return self._milp_route(b)
        order, length = self.shortest_order(u, stops, v)
        return [u, *order, v] if length <= self.T else None

    def _milp_route(self, a: np.ndarray) -> list[int] | None:
        y = self.graph.rows_model().certificate(a)
        if y is None:
            return None
        walk = self._y_to_walk(y)
        return [walk[0], *[x for x in dict.fromkeys(walk) if a[x] and x not in (walk[0], walk[-1])], walk[-1]]

    def _y_to_walk(self, y: np.ndarray) -> list[int]:
        walk = [0] * (self.T + 1)
        for (t, u, v), k in self.col.items():
            if y[k] > 0.5:
                walk[t], walk[t + 1] = u, v
        return walk

    def walk(self, a: np.ndarray) -> list[int] | None:
        """T + 1 nodes, consecutive ones equal (a wait) or adjacent, through every pulled node; None if infeasible."""
        stops = self.route(np.asarray(a))
        if stops is None:
            return None
        walk = [stops[0]]
        for target in stops[1:]:
            leg, x = [], target
            while x != walk[-1]:
                leg.append(x)
                x = int(self.pred[walk[-1], x])
            walk += leg[::-1]
        return walk + [walk[-1]] * (self.T + 1 - len(walk))

    def extendable_within(self, a: np.ndarray, closed: np.ndarray) -> bool:
        """Whether a feasible action contains every 1 of ``a`` and none of the ``closed`` entries: some open start
        and end (the given ones when set) with a walk through the given pulls (more pulls only make it longer)."""
        J = self.n
        a = np.asarray(a)
        if np.any(a[closed]) or a[:J].sum() > self.B:
            return False
        options = []
        for part in (a[J : 2 * J], a[2 * J :]):
            on = np.flatnonzero(part)
            if len(on) > 1:
                return False
            options.append(on.tolist() if len(on) else [])
        starts = options[0] or np.flatnonzero(~closed[J : 2 * J]).tolist()
        ends = options[1] or np.flatnonzero(~closed[2 * J :]).tolist()
        return any(self._fitting_route(a, u, v) is not None for u, v in itertools.product(starts, ends))

    # --------------------------------------------------------------------------- oracle protocol
    def is_feasible(self, a: np.ndarray) -> bool:
        return self.route(np.asarray(a)) is not None

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        walk = self.walk(np.asarray(a))
        if walk is None:
            return None
        y = np.zeros(self.n_y)
        y[[self.col[(t, walk[t], walk[t + 1])] for t in range(self.T)]] = 1.0
        return y

    def sample_from(self, start: int, rng: np.random.Generator) -> np.ndarray:
        """A random feasible action from ``start``: an end within T moves, then nodes in random order, each kept
        while the shortest walk through the kept ones still fits."""
        J = self.n
        reach = np.flatnonzero(self.dist[start] <= self.T)
        end = int(rng.choice(reach))
        a = np.zeros(3 * J, dtype=np.int64)
        a[J + start] = a[2 * J + end] = 1
        kept: list[int] = []
        target = int(rng.integers(0, self.B + 1))
        for x in rng.permutation(reach).tolist():
            if len(kept) >= target:
                break
            stops = [s for s in [*kept, x] if s not in (start, end)]
            if len(stops) <= _EXACT_DP_MAX and self.shortest_order(start, stops, end)[1] <= self.T:
                kept.append(x)
        a[kept] = 1
        return a

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return self.sample_from(int(rng.integers(self.n)), rng)

    def count_bound(self) -> int:
        """Starts x ends x pull sets of at most B nodes: an upper bound on the feasible actions."""
        return self.n * self.n * sum(math.comb(self.n, k) for k in range(min(self.B, self.n) + 1))

    def enumerate_all(
        self, max_count: int, closed: np.ndarray | None = None, deadline: float | None = None
    ) -> np.ndarray:
        """Every feasible action (K, 3J) with none of the ``closed`` entries (e.g. every start but the patrol's
        node: one start's actions); ``ValueError`` beyond ``max_count`` or past ``deadline`` (``perf_counter``)."""
        J = self.n
        shut = np.zeros(3 * J, dtype=bool) if closed is None else np.asarray(closed, dtype=bool)
        rows: list[np.ndarray] = []
        tried = 0
        for u, v in itertools.product(range(J), range(J)):
            if self.dist[u, v] > self.T or shut[J + u] or shut[2 * J + v]:
                continue
            near = [x for x in range(J) if self.dist[u, x] + self.dist[x, v] <= self.T and not shut[x]]
            for k in range(min(self.B, len(near)) + 1):
                for chosen in itertools.combinations(near, k):
                    if deadline is not None and tried % 256 == 0 and time.perf_counter() > deadline:
                        raise EnumerationTimeoutError(
                            f"listing the feasible actions passed its time limit ({len(rows)} so far)"
                        )
                    tried += 1
                    stops = [x for x in chosen if x not in (u, v)]
                    if self.shortest_order(u, stops, v)[1] > self.T:
                        continue
                    a = np.zeros(3 * J, dtype=np.int64)
                    a[list(chosen)] = 1
                    a[J + u] = a[2 * J + v] = 1
                    rows.append(a)
                    if len(rows) > max_count:
                        raise ValueError(f"more than {max_count} feasible actions; enumeration refused")
        return np.array(rows, dtype=np.int64).reshape(-1, 3 * J)


class OpenWalkBlock(BlockBase):
    """A patrol's open walk over J nodes: the action has 3 J entries (pulls, starts, ends), see the module."""

    kind: Literal["open_walk"] = "open_walk"
    edges: list[tuple[int, int]] = Field(description="undirected edges (u, v) between nodes, u != v")
    budget: int = Field(ge=1, description="at most this many pulls per step")
    moves: int = Field(ge=1, description="moves of the walk per step")
    _graphs: dict = PrivateAttr(default_factory=dict)

    def graph(self, n_actions: int) -> OpenWalkGraph:
        if n_actions % 3:
            raise ValueError(f"n_actions: an open walk needs 3 entries per node, got {n_actions}")
        stamp = (n_actions, self.budget, self.moves, tuple(map(tuple, self.edges)))
        if stamp not in self._graphs:
            J = n_actions // 3
            for k, (u, v) in enumerate(self.edges):
                if not (0 <= u < J and 0 <= v < J) or u == v:
                    raise ValueError(f"edges[{k}]: ({u}, {v}) must join two distinct nodes in [0, {J - 1}]")
            self._graphs.clear()
            self._graphs[stamp] = OpenWalkGraph(J, self.edges, self.budget, self.moves)
        return self._graphs[stamp]

    def compile(self, n_actions: int) -> ActionModel:
        return self.graph(n_actions).model()

    def assignment(self, a: np.ndarray, aux: np.ndarray) -> dict[str, Any]:
        """``{"route": [nodes]}``: the walk, T + 1 nodes from the start to the end."""
        graph = self.graph(len(a))
        walk = [int(np.argmax(a[graph.n : 2 * graph.n]))] * (graph.T + 1)
        for (t, _, v), y in zip(graph.arcs().tolist(), np.asarray(aux, dtype=float).tolist(), strict=True):
            if y > 0.5:
                walk[t + 1] = int(v)
        return {"route": walk}
