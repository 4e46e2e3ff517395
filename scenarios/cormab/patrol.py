"""A patrol whose route starts where the last one ended: a resource state that persists across steps (issue 16).

J sites on an undirected graph are arms (the benchmark's birth-death arms, rewards on arrival). Each step the
patrol walks T moves (``moves``, default B) from where it stands to an end node it chooses, and inspects (pulls)
at most B sites it passes. The next step starts at that end node. The instance's arms are the J sites followed
by one **position arm** with J states (the node where the patrol stands), so the engine's state is the sites'
states + the patrol's position + time to go, and every component reads the position as an arm state.

Actions have 3 J entries: pulls ``a`` (J), start indicators ``b`` (J) and end indicators ``e`` (J), tied by the
open walk's rows (:mod:`scenarios.constraints.open_walks`). The start is the position: every start entry
but the position's is unavailable in the state (:meth:`PatrolInstance.unavailable_entries`) and the row
``one_start`` forces that one. The position arm moves to the chosen end (control x = sum_v v e_v,
:meth:`PatrolInstance.arm_controls`); the occupancy LP ties E[b_u] to P(position = u) at every step
(:meth:`PatrolInstance.state_ties`,
:meth:`PatrolInstance.value_ties`), so the bound, the Lagrangian and LP-update planners price where the
patrol ends. Myopic choice ignores it: every end pays the same now.

The feasible set is not downward closed (one start, one end), so :meth:`PatrolInstance.drop_unavailable`
repairs instead: it moves the start to the position, keeps the end if it is within T moves, else stays, and
drops pulls (the last first) until the walk fits.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from scenarios.action_model import ActionModel
from scenarios.arms import Arms
from scenarios.constraints.open_walks import OpenWalkBlock, OpenWalkGraph, OpenWalkOracle
from scenarios.constraints.walks import check_edges
from scenarios.cormab.base_arms_input import arms_from_base
from scenarios.cormab.instance import CoRMABInstance, generate_arms
from scenarios.cormab.routing import random_transit_graph
from scenarios.errors import InfeasibleActionError


def with_position(sites: Arms, start: int) -> Arms:
    """The site arms followed by a position arm: J states (nodes), held under both of its own actions (the
    instance moves it), no reward, starting at node ``start``."""
    J = sites.n_arms
    if J < 2:
        raise ValueError("arms: a patrol needs at least 2 sites")
    if sites.n_levels != 1:
        raise ValueError(f"arms: a patrol inspects a site or not (K = 1), got K = {sites.n_levels}")
    if sites.available is not None and not sites.cache.allowed.all():
        raise ValueError("arms.available: a patrol's sites cannot restrict their actions")
    if not 0 <= start < J:
        raise ValueError(f"start: must be a node in [0, {J - 1}], got {start}")
    hold = np.eye(J).tolist()
    at_start = np.eye(J)[start].tolist()
    uniform = [np.full(m, 1.0 / m).tolist() for m in sites.state_counts.tolist()]
    return Arms(
        transitions=[*sites.transitions, [hold, hold]],
        arrival_rewards=None if sites.arrival_rewards is None else [*sites.arrival_rewards, [0.0] * J],
        rewards=None if sites.rewards is None else [*sites.rewards, [[0.0, 0.0]] * J],
        costs=None if sites.costs is None else [*sites.costs, [0.0, 1.0]],
        initial=[*(uniform if sites.initial is None else sites.initial), at_start],
        train_initial=None if sites.train_initial is None else [*sites.train_initial, at_start],
        horizon=sites.horizon,
    )


class PatrolInstance(CoRMABInstance):
    """J sites on a graph and a patrol that walks ``moves`` moves per step from where it stands (position arm
    last); at most ``budget`` sites inspected per step."""

    edges: list[tuple[int, int]] = Field(description="undirected edges (u, v) between site nodes, u != v")
    budget: int = Field(ge=1, description="B: the most sites inspected per step")
    moves: int = Field(ge=1, description="T: moves of the patrol's walk per step (a move follows an edge or waits)")
    _cache: dict = PrivateAttr(default_factory=dict)

    #: drop_unavailable repairs feasibility (one start, one end: not downward closed)
    repairs_dropped_actions: ClassVar[bool] = True
    #: the learned Q's prior under ``prior="auto"``: the Lagrangian planner prices the position, Whittle is n/a
    default_prior: ClassVar[str] = "lagrangian"

    @model_validator(mode="before")
    @classmethod
    def _from_base(cls, data: Any) -> Any:
        """Accept ``base_arms`` (the sites only) and ``start`` (the patrol's first node) in place of ``arms``."""
        if isinstance(data, dict) and "base_arms" in data:
            data = dict(data)
            start = data.pop("start", 0)

            def build(base: Arms, fields: dict) -> Arms | None:
                if type(start) is not int:
                    raise ValueError(f"start: the patrol's first node, an integer site index, got {start!r}")
                return with_position(base, start)

            return arms_from_base(data, "sites followed by the position arm", build)
        return data

    @model_validator(mode="after")
    def _check(self) -> PatrolInstance:
        J = self.n_sites
        if J < 2:
            raise ValueError("arms: a patrol needs at least 2 sites and the position arm")
        counts = self.arms.state_counts
        P = self.arms.cache.P[J, :, :J, :J]
        if counts[J] != J or not np.array_equal(P, np.broadcast_to(np.eye(J), P.shape)):
            raise ValueError(f"arms.transitions[{J}]: the last arm must be the position arm ({J} states, held)")
        if self.arms.restricted:
            raise ValueError("arms.available: a patrol's arms cannot restrict their actions")
        c = self.arms.cache
        paid = c.arrival[J, :J] if c.arrival is not None else c.R[J, :J]
        if np.any(paid != 0):  # the planners and the bound read it as earning nothing (a reward there went uncounted)
            raise ValueError(f"arms.rewards[{J}]: the position arm earns nothing (reward the sites instead)")
        check_edges(self.edges, J)
        return self

    def __eq__(self, other: object) -> bool:  # the private cache is not part of the data
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def generate(
        cls, n_arms: int = 6, budget: int = 2, seed: int = 0, horizon: int = 20, moves: int | None = None
    ) -> PatrolInstance:
        """Random sites on a transit-like graph (:func:`scenarios.cormab.routing.random_transit_graph`).

        Parameters:
            n_arms: J, the sites (the instance has J + 1 arms; exact DP: 4^J J joint states, 24,576 at J = 6).
            budget: B, the most sites inspected per step; also the number of good sites (the benchmark's arms).
            seed: the sites' and the graph's seed.
            horizon: steps per episode.
            moves: T, moves per step (default B): the patrol covers at most T hops a step, so where it ends
                decides what it can reach next.
        """
        if budget < 1:
            raise ValueError("budget: must be at least 1")
        edges, centre = random_transit_graph(n_arms, seed)
        sites = generate_arms(n_arms, budget, seed, horizon)
        T = budget if moves is None else moves
        return cls(arms=with_position(sites, centre), edges=edges, budget=budget, moves=T)

    # ------------------------------------------------------------------------------- structure
    @property
    def n_sites(self) -> int:
        return self.arms.n_arms - 1

    @property
    def n_actions(self) -> int:
        return 3 * self.n_sites

    def _memo(self, key: str, build):
        stamp = (self.n_sites, self.budget, self.moves, tuple(self.edges), tuple(map(repr, self.constraints)))
        if self._cache.get("stamp") != stamp:
            self._cache = {"stamp": stamp}
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def walk_block(self) -> OpenWalkBlock:
        return self._memo("block", lambda: OpenWalkBlock(edges=self.edges, budget=self.budget, moves=self.moves))

    def walk_graph(self) -> OpenWalkGraph:
        return self.walk_block().graph(self.n_actions)

    def oracle(self) -> OpenWalkOracle:
        oracle = self.walk_graph().model().oracle
        assert isinstance(oracle, OpenWalkOracle)
        return oracle

    def action_model(self) -> ActionModel:
        """The open walk's rows (plus the user's constraints)."""
        return self._memo("model", lambda: self.compose_model("patrol", [self.walk_block()]))

    def positions(self, states: np.ndarray) -> np.ndarray:
        """(...) the patrol's node in ``states`` (..., J + 1)."""
        return np.asarray(states, dtype=np.int64)[..., self.n_sites]

    def arm_levels(self, action: np.ndarray) -> np.ndarray:
        """(..., J + 1): each site's pull, the position arm's own level 0 (it moves by the end entries)."""
        a = np.asarray(action, dtype=np.int64)
        J = self.n_sites
        return np.concatenate([a[..., :J], np.zeros((*a.shape[:-1], 1), dtype=np.int64)], axis=-1)

    def level_weights(self) -> np.ndarray:
        """(J + 1, 3 J): site j's level is a_j; the position's control is sum_v v e_v (the end node)."""
        J = self.n_sites
        W = np.zeros((J + 1, 3 * J))
        W[np.arange(J), np.arange(J)] = 1.0
        W[J, 2 * J :] = np.arange(J, dtype=float)
        return W

    def action_arm_links(self) -> np.ndarray:
        """(3 J, J + 1): pulls reach their site, starts and ends the position arm."""
        J = self.n_sites
        links = np.zeros((3 * J, J + 1))
        links[np.arange(J), np.arange(J)] = 1.0
        links[J:, J] = 1.0
        return links

    def arm_controls(self) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Sites: values 0/1 with their own transitions and rewards; position: values 0..J-1 (the end node),
        moving there for sure, no reward."""
        J = self.n_sites
        P, R, _, _ = self.arms.arrays()
        S = P.shape[-1]
        move = np.zeros((J, S, S))
        move[np.arange(J), :, np.arange(J)] = 1.0
        values = [np.array([0.0, 1.0])] * J + [np.arange(J, dtype=float)]
        return self.level_weights(), values, [*P[:J], move], [*R[:J], np.zeros((S, J))]

    def state_ties(self) -> list[tuple[int, int, int]]:
        """Start entry J + u is 1 exactly when the position arm (arm J) is at node u."""
        J = self.n_sites
        return [(J + u, J, u) for u in range(J)]

    def value_ties(self) -> list[tuple[int, int, int]]:
        """End entry 2 J + v is 1 exactly when the position arm's control is v (it moves to node v)."""
        J = self.n_sites
        return [(2 * J + v, J, v) for v in range(J)]

    # ------------------------------------------------------------------------------- dynamics
    def transition(self, states: np.ndarray, action: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
        """Sites by their pulls (one uniform each); the position moves to the chosen end."""
        s = np.asarray(states, dtype=np.int64)
        nxt = self.arms.sample(s, self.arm_levels(action), uniforms)
        ends = np.asarray(action)[..., 2 * self.n_sites :]
        nxt[..., self.n_sites] = np.where(ends.any(-1), ends.argmax(-1), self.positions(s))
        return nxt

    # ------------------------------------------------------------------- the start is the position
    @property
    def state_dependent(self) -> bool:
        return True

    def unavailable_entries(self, states: np.ndarray) -> np.ndarray:
        """(..., 3 J) True on every start entry but the patrol's position."""
        pos = self.positions(states)
        J = self.n_sites
        closed = np.zeros((*pos.shape, 3 * J), dtype=bool)
        closed[..., J : 2 * J] = np.arange(J) != pos[..., None]
        return closed

    def check_available(self, states: np.ndarray, action: np.ndarray) -> None:
        bad = np.flatnonzero(self.unavailable_entries(states) & (np.asarray(action) > 0))
        if bad.size:
            where = int(self.positions(states))
            J = self.n_sites
            raise InfeasibleActionError([f"start[{i - J}]: the patrol is at node {where}" for i in bad.tolist()])

    def drop_unavailable(self, states: np.ndarray, action: np.ndarray) -> np.ndarray:
        """``action`` made feasible from the patrol's position: start there, keep the end if it is within T moves
        (else stay), drop pulls (the highest-numbered first) until the walk fits."""
        a = np.array(action, dtype=np.int64, copy=True)
        flat, pos = a.reshape(-1, a.shape[-1]), np.broadcast_to(self.positions(states), a.shape[:-1]).ravel()
        oracle, J, model = self.oracle(), self.n_sites, self.action_model()
        for row, p in zip(flat, pos.tolist(), strict=True):
            row[J : 2 * J] = 0
            row[J + p] = 1
            ends = np.flatnonzero(row[2 * J :])
            end = int(ends[0]) if len(ends) and oracle.dist[p, ends[0]] <= oracle.T else p
            row[2 * J :] = 0
            row[2 * J + end] = 1
            for j in np.flatnonzero(row[:J])[::-1].tolist():
                if model.is_feasible(row):
                    break
                row[j] = 0
        return flat.reshape(a.shape)

    def walk(self, action: object) -> list[int]:
        """The patrol's T + 1 nodes for a feasible action; raises :class:`InfeasibleActionError` otherwise."""
        model = self.action_model()
        a = model.validate(action)
        walk = self.oracle().walk(a) if model.is_feasible(a) else None
        if walk is None:
            raise InfeasibleActionError(model.violations(a))
        return walk
