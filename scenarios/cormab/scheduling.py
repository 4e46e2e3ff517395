"""Schedule-constrained coRMAB: workers meet arms in time slots (../shared/REFERENCE.md 1.2 item 2).

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
from scenarios.constraints.matching import MatchingOracle  # noqa: F401  (re-exported)
from scenarios.constraints.scheduling import SchedulingBlock
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

    def scheduling_block(self) -> SchedulingBlock:
        """The domain's feasible set as one scheduling block (its budget included)."""
        return SchedulingBlock(
            n_slots=self.n_slots,
            arm_slots=self.arm_slots,
            worker_slots=self.worker_slots,
            assignments_per_pull=self.assignments_per_pull,
            budget=self.budget,
        )

    def action_model(self) -> ActionModel:
        """One scheduling block (plus the user's constraints)."""
        return self.compose_model("scheduling", [self.scheduling_block()])
