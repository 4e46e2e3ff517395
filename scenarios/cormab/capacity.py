"""Capacity-constrained coRMAB: workers with capacities serve arms with costs (../shared/REFERENCE.md 1.2 item 1).

Rows over [a ; x] with x_ij = worker i serves arm j:
    worker_capacity[i]:      sum_j c_j x_ij <= C_i
    pull_needs_worker[j]:    a_j - sum_i x_ij <= 0
    assign_only_pulled[i,j]: x_ij - a_j <= 0
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.constraints.bin_packing import BinPackingOracle  # noqa: F401  (re-exported)
from scenarios.constraints.packing_patterns import maximal_packings
from scenarios.constraints.worker_capacity import WorkerCapacityBlock
from scenarios.cormab.instance import CoRMABInstance, generate_arms


class CapacityInstance(CoRMABInstance):
    """Arms, per-arm costs and per-worker capacities."""

    costs: list[int] = Field(description="cost of serving each arm (one entry per arm), >= 1")
    capacities: list[int] = Field(description="capacity of each worker, >= 0")

    @model_validator(mode="after")
    def _check(self) -> CapacityInstance:
        if len(self.costs) != self.n_arms:
            raise ValueError(f"costs: expected {self.n_arms} entries (one per arm), got {len(self.costs)}")
        if any(c < 1 for c in self.costs):
            raise ValueError("costs: every cost must be at least 1")
        if not self.capacities:
            raise ValueError("capacities: at least one worker is required")
        if any(c < 0 for c in self.capacities):
            raise ValueError("capacities: capacities must be non-negative")
        return self

    @classmethod
    def generate(cls, n_arms: int = 20, budget: int = 5, seed: int = 0, horizon: int = 20) -> CapacityInstance:
        """Reference distributions: W = budget workers, costs U{2..6}, capacities U{2..7}."""
        if budget < 1:
            raise ValueError("budget: must be at least 1 (the number of workers)")
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        rng = np.random.default_rng([seed, 1])
        return cls(
            arms=generate_arms(n_arms, budget, seed, horizon),
            costs=rng.integers(2, 7, n_arms).tolist(),
            capacities=rng.integers(2, 8, budget).tolist(),
        )

    def action_costs(self) -> np.ndarray:
        return np.asarray(self.costs, dtype=float)

    def interchangeable_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """Arms of equal cost are interchangeable in the feasible set (class = distinct cost), and a feasible
        action pulls at most sum_i floor(C_i / c) arms of cost c (the dominance reduction of
        :mod:`engine.planners.reduction`)."""
        values, cls = np.unique(np.asarray(self.costs, dtype=np.int64), return_inverse=True)
        caps = np.asarray(self.capacities, dtype=np.int64)
        return cls.astype(np.int64), np.array([int((caps // c).sum()) for c in values.tolist()], dtype=np.int64)

    def count_certificate(self, a: np.ndarray, w: np.ndarray) -> np.ndarray | None:
        """Auxiliaries of :meth:`action_model` certifying ``a`` from the count rows' auxiliaries ``w`` (None when
        they do not fit); the caller checks them against the rows."""
        return _count_certificate(self, a, w)

    def class_count_rows(self, max_patterns: int = 5000):
        """Exact rows over [n (pulls per cost class) ; z] for the count vectors a feasible action can have
        (classes as in :meth:`interchangeable_classes`): cutting patterns, z_tp = how many workers of capacity
        type t take the maximal packing p (sum_p z_tp <= workers of type t, n_c <= sum_tp p_c z_tp); with more
        than ``max_patterns`` patterns, one integer y_ic per worker and class instead."""
        values = np.unique(np.asarray(self.costs, dtype=np.int64))
        C = values.size
        types, count = np.unique(np.asarray(self.capacities, dtype=np.int64), return_counts=True)
        pats = [(t, p) for t, cap in enumerate(types.tolist()) for p in maximal_packings(values, cap, max_patterns)]
        if len(pats) <= max_patterns:
            P = np.array([p for _, p in pats], dtype=float).reshape(-1, C)
            t_of = np.array([t for t, _ in pats], dtype=np.int64)
            nz = len(pats)
            type_rows = sp.csr_matrix((np.ones(nz), (t_of, C + np.arange(nz))), shape=(types.size, C + nz))
            class_rows = sp.hstack([sp.identity(C), sp.csr_matrix(-P.T)], format="csr")
            A = sp.vstack([type_rows, class_rows], format="csr")
            lo = np.full(types.size + C, -np.inf)
            hi = np.r_[count.astype(float), np.zeros(C)]
            return A, lo, hi, np.zeros(nz), count[t_of].astype(float), np.ones(nz, bool)
        caps = np.asarray(self.capacities, dtype=np.int64)
        W = caps.size
        y = lambda i, c: C + i * C + c  # noqa: E731  (after n: y[i, c] row-major)
        worker_rows = sp.csr_matrix(
            (
                np.tile(values.astype(float), W),
                (np.repeat(np.arange(W), C), [y(i, c) for i in range(W) for c in range(C)]),
            ),
            shape=(W, C + W * C),
        )
        class_rows = sp.hstack([sp.identity(C), sp.csr_matrix(-np.tile(np.eye(C), W))], format="csr")
        A = sp.vstack([worker_rows, class_rows], format="csr")
        upper = (caps[:, None] // values[None, :]).ravel().astype(float)
        return (
            A,
            np.full(W + C, -np.inf),
            np.r_[caps.astype(float), np.zeros(C)],
            np.zeros(W * C),
            upper,
            np.ones(W * C, bool),
        )

    def action_model(self) -> ActionModel:
        """One worker_capacity block (plus the user's constraints)."""
        block = WorkerCapacityBlock(costs=self.costs, capacities=self.capacities)
        return self.compose_model("capacity", [block])


def _count_certificate(
    instance: CapacityInstance, a: np.ndarray, w: np.ndarray, max_patterns: int = 5000
) -> np.ndarray | None:
    """The x_ij of :meth:`CapacityInstance.action_model` for action ``a`` from the auxiliaries ``w`` of
    :meth:`CapacityInstance.class_count_rows` (patterns per worker type, or y_ic per worker), or None."""
    costs = np.asarray(instance.costs, dtype=np.int64)
    caps = np.asarray(instance.capacities, dtype=np.int64)
    values = np.unique(costs)
    C, W, J = values.size, caps.size, costs.size
    w = np.round(np.asarray(w, dtype=float)).astype(np.int64)
    types = np.unique(caps)
    pats = [(t, p) for t, cap in enumerate(types.tolist()) for p in maximal_packings(values, cap, max_patterns)]
    room = np.zeros((W, C), dtype=np.int64)  # how many arms of each class each worker may take
    if len(pats) <= max_patterns:
        if w.size != len(pats):
            return None
        for t in range(types.size):
            workers = np.flatnonzero(caps == types[t]).tolist()
            for (tt, p), z in zip(pats, w.tolist(), strict=True):
                for _ in range(z if tt == t else 0):
                    if not workers:
                        return None
                    room[workers.pop()] = p
    else:
        if w.size != W * C:
            return None
        room = w.reshape(W, C)
    cls = np.searchsorted(values, costs)
    x = np.zeros((W, J))
    for c in range(C):
        slots = np.repeat(np.arange(W), np.maximum(room[:, c], 0))
        arms = np.flatnonzero((np.asarray(a) > 0) & (cls == c))
        if arms.size > slots.size:
            return None
        x[slots[: arms.size], arms] = 1.0
    return x.ravel()
