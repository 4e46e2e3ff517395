"""Schedule-constrained coRMAB: workers meet arms in time slots (REFERENCE.md 1.2 item 2).

Rows over [a ; x] with x_ijs = worker i serves arm j in slot s, a column only where worker i and arm j
are both available in slot s (K = ``assignments_per_pull``, 2 in the reference):
    budget:                       sum_j a_j <= B
    worker_slot[i,s]:             sum_j x_ijs <= 1
    arm_assignments[j]:           sum_is x_ijs <= K
    pull_needs_assignments[j]:    K a_j - sum_is x_ijs <= 0
    assign_only_pulled[i,j,s]:    x_ijs - a_j <= 0

An action is feasible iff sum a <= B and the pulled arms can each get K distinct (worker, slot) pairs they
share, every pair serving one arm: a bipartite b-matching, decided exactly by augmenting paths.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator

from scenarios.action_model import ActionModel
from scenarios.cormab.instance import CoRMABInstance, generate_arms


def slot_weights(n_slots: int, late: bool) -> np.ndarray:
    """Sampling weights of the slots: linear ramp 1..n towards late slots (arms) or early slots (workers).

    With 5 slots arms pick slots with weights 1:2:3:4:5 and workers with 5:4:3:2:1, so the late slots are
    crowded with arms and thin on workers: the matching, not the budget, is what binds.
    """
    ramp = np.arange(1, n_slots + 1, dtype=float)
    w = ramp if late else ramp[::-1]
    return w / w.sum()


class SchedulingInstance(CoRMABInstance):
    """Arms and workers, each available in a few time slots; a pulled arm needs K worker-slot assignments."""

    n_slots: int = Field(5, ge=1, le=1000, description="number of time slots")
    budget: int = Field(description="maximum number of arms pulled per step", ge=0)
    arm_slots: list[list[int]] = Field(description="slots in which each arm is available (one list per arm)")
    worker_slots: list[list[int]] = Field(description="slots in which each worker is available")
    assignments_per_pull: int = Field(2, ge=1, le=100, description="distinct (worker, slot) pairs a pull needs")

    @model_validator(mode="after")
    def _check(self) -> SchedulingInstance:
        if len(self.arm_slots) != self.n_arms:
            raise ValueError(f"arm_slots: expected {self.n_arms} entries (one per arm), got {len(self.arm_slots)}")
        if not self.worker_slots:
            raise ValueError("worker_slots: at least one worker is required")
        for name in ("arm_slots", "worker_slots"):
            for k, slots in enumerate(getattr(self, name)):
                if len(set(slots)) != len(slots):
                    raise ValueError(f"{name}: entry {k} lists a slot twice")
                if any(s < 0 or s >= self.n_slots for s in slots):
                    raise ValueError(f"{name}: entry {k} has a slot outside [0, {self.n_slots - 1}]")
        return self

    @classmethod
    def generate(
        cls, n_arms: int = 20, budget: int = 5, seed: int = 0, horizon: int = 20, n_slots: int = 5
    ) -> SchedulingInstance:
        """Reference distributions: W = budget workers in 3 slots each (early), arms in 2 slots (late)."""
        if budget < 1:
            raise ValueError("budget: must be at least 1 (the number of workers)")
        if n_arms < 1:
            raise ValueError("n_arms: must be at least 1")
        if n_slots < 3:
            raise ValueError("n_slots: must be at least 3 (workers are available in 3 slots)")
        rng = np.random.default_rng([seed, 2])
        arm_w, worker_w = slot_weights(n_slots, late=True), slot_weights(n_slots, late=False)
        arm_slots = [sorted(rng.choice(n_slots, 2, replace=False, p=arm_w).tolist()) for _ in range(n_arms)]
        worker_slots = [sorted(rng.choice(n_slots, 3, replace=False, p=worker_w).tolist()) for _ in range(budget)]
        return cls(
            arms=generate_arms(n_arms, budget, seed, horizon),
            n_slots=n_slots,
            budget=budget,
            arm_slots=arm_slots,
            worker_slots=worker_slots,
        )

    def availability(self) -> tuple[np.ndarray, np.ndarray]:
        """Boolean (workers x slots) and (arms x slots) availability matrices."""
        W, J, S = len(self.worker_slots), self.n_arms, self.n_slots
        worker = np.zeros((W, S), dtype=bool)
        arm = np.zeros((J, S), dtype=bool)
        for i, slots in enumerate(self.worker_slots):
            worker[i, slots] = True
        for j, slots in enumerate(self.arm_slots):
            arm[j, slots] = True
        return worker, arm

    def interchangeable_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """Arms with the same set of slots are interchangeable in the feasible set (class = slot set); a
        feasible action pulls at most ``budget`` of them, and at most (worker-slot pairs in their slots) // K
        (the dominance reduction of :mod:`engine.planners.reduction`)."""
        worker, arm = self.availability()
        patterns, cls = np.unique(arm, axis=0, return_inverse=True)
        nodes = (patterns.astype(np.int64) @ worker.sum(0).astype(np.int64)).reshape(-1)
        most = np.minimum(self.budget, nodes // self.assignments_per_pull)
        return cls.reshape(-1).astype(np.int64), most.astype(np.int64)

    def class_count_rows(self):
        """Exact rows over [n (pulls per slot-set class) ; f] for the count vectors a feasible action can have
        (classes as in :meth:`interchangeable_classes`): a transportation problem, f_pv = worker-slot node v
        serving class p (continuous: integral supplies give an integral flow, and K n_p distinct nodes split
        into n_p arms of K distinct nodes each):
            sum_p n_p <= B;   K n_p - sum_v f_pv <= 0;   sum_p f_pv <= 1."""
        worker, arm = self.availability()
        patterns = np.unique(arm, axis=0)
        P, K = patterns.shape[0], float(self.assignments_per_pull)
        _, node_s = np.nonzero(worker)  # node v = (worker, slot)
        pv = np.argwhere(patterns[:, node_s])  # (pattern, node) pairs that can meet
        nf = len(pv)
        f = P + np.arange(nf)
        budget = sp.csr_matrix((np.ones(P), (np.zeros(P, int), np.arange(P))), shape=(1, P + nf))
        demand = sp.csr_matrix(
            (np.r_[np.full(P, K), -np.ones(nf)], (np.r_[np.arange(P), pv[:, 0]], np.r_[np.arange(P), f])),
            shape=(P, P + nf),
        )
        node = sp.csr_matrix((np.ones(nf), (pv[:, 1], f)), shape=(node_s.size, P + nf))
        A = sp.vstack([budget, demand, node], format="csr")
        hi = np.r_[float(self.budget), np.zeros(P), np.ones(node_s.size)]
        return A, np.full(A.shape[0], -np.inf), hi, np.zeros(nf), np.ones(nf), np.zeros(nf, bool)

    def assignment_triples(self) -> np.ndarray:
        """(n_x, 3) array of (worker, arm, slot) for every assignment variable, in column order."""
        worker, arm = self.availability()
        return np.argwhere(worker[:, None, :] & arm[None, :, :])

    def action_model(self) -> ActionModel:
        J, W, S, K = self.n_arms, len(self.worker_slots), self.n_slots, self.assignments_per_pull
        triples = self.assignment_triples()
        i, j, s = triples.T
        nx_ = len(triples)
        col = J + np.arange(nx_)
        blocks: list[sp.csr_matrix] = []
        lo: list[np.ndarray] = []
        hi: list[np.ndarray] = []
        names: list[str] = []

        def add(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, n_rows: int, lower, upper, labels) -> None:
            blocks.append(sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, J + nx_)))
            lo.append(np.broadcast_to(np.asarray(lower, float), (n_rows,)))
            hi.append(np.broadcast_to(np.asarray(upper, float), (n_rows,)))
            names.extend(labels)

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
        A = sp.vstack(blocks, format="csr")
        return ActionModel(
            name="scheduling",
            n_actions=J,
            A=A,
            row_lower=np.concatenate(lo),
            row_upper=np.concatenate(hi),
            row_names=names,
            aux_lower=np.zeros(nx_),
            aux_upper=np.ones(nx_),
            aux_integer=np.ones(nx_, bool),
            aux_names=[f"x[{a},{b},{c}]" for a, b, c in triples.tolist()],
            downward_closed=True,
            oracle=MatchingOracle(triples, J, W, S, self.budget, K),
        )


class MatchingOracle:
    """Exact feasibility of the scheduling domain by augmenting paths (Kuhn's algorithm with arm copies).

    Each pulled arm is K copies; each copy must be matched to a distinct (worker, slot) node the arm shares.
    """

    def __init__(self, triples: np.ndarray, n_arms: int, n_workers: int, n_slots: int, budget: int, need: int) -> None:
        self.n_arms, self.n_slots, self.budget, self.need = n_arms, n_slots, budget, need
        self.n_nodes = n_workers * n_slots
        self.n_x = len(triples)
        node = triples[:, 0] * n_slots + triples[:, 2]
        self.adj: list[list[int]] = [node[triples[:, 1] == j].tolist() for j in range(n_arms)]
        self.col = {(int(j), int(v)): k for k, (j, v) in enumerate(zip(triples[:, 1], node, strict=True))}

    def _augment(self, arm: int, match: list[int], seen: set[int]) -> bool:
        """Find an augmenting path from a new copy of ``arm``; ``match[node]`` is the arm holding it."""
        for v in self.adj[arm]:
            if v in seen or match[v] == arm:
                continue
            seen.add(v)
            if match[v] < 0 or self._augment(match[v], match, seen):
                match[v] = arm
                return True
        return False

    def _add(self, arm: int, match: list[int]) -> bool:
        """Give ``arm`` its K nodes; on failure ``match`` is restored and False returned."""
        if len(self.adj[arm]) < self.need:
            return False
        before = match.copy()
        for _ in range(self.need):
            if not self._augment(arm, match, set()):
                match[:] = before
                return False
        return True

    def _match(self, a: np.ndarray) -> list[int] | None:
        pulled = np.flatnonzero(np.asarray(a) > 0)
        if pulled.size > self.budget or pulled.size * self.need > self.n_nodes:
            return None
        match = [-1] * self.n_nodes
        for j in pulled.tolist():
            if not self._add(j, match):
                return None
        return match

    def is_feasible(self, a: np.ndarray) -> bool:
        return self._match(a) is not None

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        match = self._match(a)
        if match is None:
            return None
        x = np.zeros(self.n_x)
        for v, j in enumerate(match):
            if j >= 0:
                x[self.col[(j, v)]] = 1.0
        return x

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Arms in random order, each kept when it can still be matched: a maximal feasible action."""
        match = [-1] * self.n_nodes
        a = np.zeros(self.n_arms, dtype=np.int64)
        for j in rng.permutation(self.n_arms).tolist():
            if a.sum() >= self.budget:
                break
            if self._add(j, match):
                a[j] = 1
        return a
