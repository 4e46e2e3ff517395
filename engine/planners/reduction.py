"""Dominance reduction of a planner's decision MILP: interchangeable arms compete only with each other.

An arm-pull planner maximises ``gains @ a + offset`` over the domain's feasible set. When the set is downward
closed, an optimal action pulls no arm of non-positive gain (dropping it keeps feasibility and loses
nothing). When arms j and j' are *interchangeable* (swapping them maps feasible actions to feasible actions)
and no feasible action pulls more than K_c arms of class c, some optimal action pulls, within each class, a
prefix of its arms sorted by decreasing gain: swapping a pulled arm for a better unpulled one of the same
class keeps feasibility and never lowers the objective. So only the top min(K_c, #positive) arms of each
class by gain can matter, and the MILP restricted to them has the full MILP's optimum.

The restricted MILP does not depend on which arms are kept, only on how many per class: it is the domain's
MILP over a fixed *template* of arms (the first min(K_c, |c|) arms of each class) with their auxiliary
columns. A decision writes the k-th best positive gain of class c on the k-th template arm of c (unused template
arms get an upper bound of 0) and maps the solution back; the template adds a_(c,k) >= a_(c,k+1) rows
(valid because the gains are sorted), which removes the symmetry between equal arms. Its size is set by the
K_c, independent of the number of arms J, and one persistent HiGHS model serves every decision (only the
objective and column bounds change).

With :class:`ClassCounts` the template keeps only its slot binaries and replaces the domain's auxiliaries by
the instance's exact rows over the per-class counts (feasibility depends on nothing else once classes are
interchangeable): a model of a few hundred columns even at J = 10,000.

Scenarios opt in with :class:`InterchangeableArms` (``interchangeable_classes()`` on the instance); a subclass
that changes the feasible set must not inherit these hooks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp

from scenarios.action_model import ActionModel
from solvers.milp import MatrixMILP
from solvers.solution import OPTIMAL, Solution

if TYPE_CHECKING:
    from engine.protocols import MilpBackend

#: (A over [n_1..n_C ; w], row_lower, row_upper, w_lower, w_upper, w_integer): an integer count vector n is the
#: per-class pull count of a feasible action iff some w satisfies the rows (see :class:`ClassCounts`)
CountRows = tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@runtime_checkable
class ClassCounts(Protocol):
    """Optional, with :class:`InterchangeableArms`: with interchangeable classes, feasibility depends only on how
    many arms of each class are pulled; these rows describe the feasible count vectors exactly (a compact,
    J-independent model, e.g. cutting patterns per worker capacity instead of one assignment per arm and
    worker)."""

    def class_count_rows(self) -> CountRows: ...


@runtime_checkable
class CountCertificate(Protocol):
    """Optional, with :class:`ClassCounts`: the ActionModel's auxiliaries for an action from the count rows'
    auxiliaries (checked against the rows in O(nonzeros) instead of asking the feasibility oracle)."""

    def count_certificate(self, a: np.ndarray, w: np.ndarray) -> np.ndarray | None: ...


@runtime_checkable
class InterchangeableArms(Protocol):
    """An instance whose arms fall into classes of interchangeable arms (swapping two arms of one class is a
    symmetry of the feasible set), with an upper bound on how many arms of each class a feasible action pulls."""

    def interchangeable_classes(self) -> tuple[np.ndarray, np.ndarray]:
        """(class of each arm (J,) in 0..n_classes-1, most arms of each class a feasible action pulls)."""
        ...


def top_per_class(gains: np.ndarray, class_of_arm: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The arms worth keeping: positive gain, among the ``keep[c]`` best of their class (ties: lower index
    first). Returns (arms, rank of each within its class), arms grouped by class, best first."""
    gains = np.asarray(gains, dtype=float)
    pos = np.flatnonzero(gains > 0)
    if pos.size == 0:
        return pos, pos
    cls = class_of_arm[pos]
    order = np.lexsort((pos, -gains[pos], cls))  # by class, then decreasing gain, then index
    arms, cls = pos[order], cls[order]
    first = np.r_[0, np.flatnonzero(np.diff(cls)) + 1]
    starts = np.repeat(first, np.diff(np.r_[first, cls.size]))
    rank = np.arange(cls.size) - starts
    ok = rank < keep[cls]
    return arms[ok], rank[ok]


def forced_zero_aux(model: ActionModel) -> list[np.ndarray]:
    """For each action j, the auxiliary columns forced to 0 when a_j = 0: those with a row ``w x_k - v a_j
    <= 0`` (w, v > 0, nothing else in the row, lower bound <= 0) and a lower bound of 0 (e.g. assignments
    that only a pulled arm may use)."""
    n = model.n_actions
    A = model.A.tocsr()
    nnz = np.diff(A.indptr)
    owned: list[list[int]] = [[] for _ in range(n)]
    for r in np.flatnonzero((nnz == 2) & (model.row_upper == 0) & (model.row_lower <= 0)).tolist():
        cols = A.indices[A.indptr[r] : A.indptr[r + 1]]
        vals = A.data[A.indptr[r] : A.indptr[r + 1]]
        act = cols < n
        if act.sum() != 1:
            continue
        j, k = int(cols[act][0]), int(cols[~act][0])
        if vals[act][0] < 0 < vals[~act][0] and model.aux_lower[k - n] == 0:
            owned[j].append(k)
    return [np.asarray(o, dtype=np.int64) for o in owned]


@dataclass
class ReducedDecision:
    """The template MILP at one state, and how its columns map back to arms."""

    milp: MatrixMILP
    slot_arm: np.ndarray  # arm written on each template arm (-1: unused)

    def action(self, x: np.ndarray, n_actions: int, template_cols: np.ndarray) -> np.ndarray:
        a = np.zeros(n_actions, dtype=np.int64)
        on = (np.round(x[template_cols]) > 0.5) & (self.slot_arm >= 0)
        a[self.slot_arm[on]] = 1
        return a


class ArmReduction:
    """The template MILP of a downward-closed arm-pull domain with interchangeable arms (module docstring)."""

    def __init__(
        self,
        model: ActionModel,
        class_of_arm: np.ndarray,
        max_pulled: np.ndarray,
        symmetry_rows: bool = True,
        count_rows: CountRows | None = None,
    ) -> None:
        if not model.downward_closed:
            raise ValueError("the dominance reduction needs a downward-closed feasible set")
        self.model = model
        n = model.n_actions
        self.class_of_arm = np.asarray(class_of_arm, dtype=np.int64).reshape(-1)
        if self.class_of_arm.shape != (n,) or (n and self.class_of_arm.min() < 0):
            raise ValueError(f"class_of_arm: expected {n} class indices >= 0")
        n_classes = int(self.class_of_arm.max()) + 1 if n else 0
        most = np.asarray(max_pulled, dtype=np.int64).reshape(-1)
        if most.size < n_classes or (most.size and most.min() < 0):
            raise ValueError(f"max_pulled: expected {n_classes} non-negative counts")
        size = np.bincount(self.class_of_arm, minlength=n_classes)
        self.keep = np.minimum(most[:n_classes], size)
        # template: the first keep[c] arms of each class, slots grouped by class in rank order
        template = [np.flatnonzero(self.class_of_arm == c)[: self.keep[c]] for c in range(n_classes)]
        self.template = np.concatenate(template).astype(np.int64) if template else np.zeros(0, np.int64)
        self.slot_start = np.r_[0, np.cumsum(self.keep)][:-1].astype(np.int64)
        self.counts = count_rows is not None
        if count_rows is not None:
            small = _count_milp(count_rows, self.class_of_arm[self.template], n_classes)
            self.template_cols = np.arange(self.template.size)
            self.base = _with_order_rows(small, self.template_cols, self.keep) if symmetry_rows else small
            return
        # the full MILP with the non-template arms and the auxiliaries they own fixed to 0, pruned
        full = model.milp(np.zeros(n))
        dropped = np.setdiff1d(np.arange(n), self.template)
        owned = forced_zero_aux(model)
        fixed = np.concatenate([dropped, *(owned[j] for j in dropped.tolist())]).astype(np.int64)
        full.col_upper[fixed] = 0.0
        small, kept = full.pruned()
        self.kept_cols = kept
        position = np.full(full.n_cols, -1)
        position[kept] = np.arange(kept.size)
        self.template_cols = position[self.template]
        if np.any(self.template_cols < 0):  # a template arm fixed by its own bounds: keep it simple, refuse
            raise ValueError("a template arm column was pruned")
        if symmetry_rows:
            small = _with_order_rows(small, self.template_cols, self.keep)
        self.base = small

    @property
    def n_template(self) -> int:
        return int(self.template.size)

    def decision(self, gains: np.ndarray, offset: float) -> ReducedDecision:
        """The template MILP for ``gains @ a + offset`` (maximised), with the arm on each template slot."""
        arms, rank = top_per_class(gains, self.class_of_arm, self.keep)
        slot = self.slot_start[self.class_of_arm[arms]] + rank
        slot_arm = np.full(self.n_template, -1, dtype=np.int64)
        slot_arm[slot] = arms
        milp = MatrixMILP(
            c=np.zeros(self.base.n_cols),
            A=self.base.A,
            row_lower=self.base.row_lower,
            row_upper=self.base.row_upper,
            col_lower=self.base.col_lower,
            col_upper=self.base.col_upper.copy(),
            integer=self.base.integer,
            sense="max",
            offset=float(offset) + float(self.base.offset),
        )
        milp.c[self.template_cols[slot]] = np.asarray(gains, dtype=float)[arms]
        milp.col_upper[self.template_cols[slot_arm < 0]] = 0.0
        return ReducedDecision(milp, slot_arm)

    def action(self, decision: ReducedDecision, x: np.ndarray) -> np.ndarray:
        return decision.action(x, self.model.n_actions, self.template_cols)

    def count_aux(self, x: np.ndarray) -> np.ndarray:
        """The count rows' auxiliaries in a template solution ``x`` (count-rows reductions only)."""
        return np.asarray(x)[self.n_template :]

    def solve(
        self,
        solver: MilpBackend,
        gains: np.ndarray,
        offset: float,
        time_limit: float | None,
        mip_rel_gap: float | None = None,
    ) -> tuple[np.ndarray | None, Solution]:
        """(the action, or None, and the template MILP's solution) for ``gains @ a + offset``. No arm with a
        positive gain: a = 0 is optimal (the feasible set is downward closed), no solver needed."""
        decision = self.decision(gains, offset)
        if np.all(decision.slot_arm < 0):
            value = float(decision.milp.offset)
            return np.zeros(self.model.n_actions, dtype=np.int64), Solution(
                np.zeros(decision.milp.n_cols), value, value, 0.0, OPTIMAL, 0.0
            )
        sol = solver.solve(decision.milp, time_limit=time_limit, mip_rel_gap=mip_rel_gap)
        return (None if sol.x is None else self.action(decision, sol.x)), sol

    def greedy(self, gains: np.ndarray) -> np.ndarray:
        """A feasible action: the kept arms by decreasing gain, each added when the action stays feasible."""
        arms, _ = top_per_class(gains, self.class_of_arm, self.keep)
        a = np.zeros(self.model.n_actions, dtype=np.int64)
        for j in arms[np.argsort(-np.asarray(gains)[arms], kind="stable")].tolist():
            a[j] = 1
            if not self.model.is_feasible(a):
                a[j] = 0
        return a

    def trivial_bound(self, gains: np.ndarray, offset: float) -> float:
        """offset + the kept arms' positive gains: a bound on the objective without any solve."""
        arms, _ = top_per_class(gains, self.class_of_arm, self.keep)
        return float(offset) + float(np.asarray(gains, dtype=float)[arms].sum())

    def bounds_milp(self, gains: np.ndarray, offset: float, full: MatrixMILP) -> MatrixMILP:
        """The alternative: the full MILP with every arm outside the kept set fixed to 0 by its column bound."""
        arms, _ = top_per_class(gains, self.class_of_arm, self.keep)
        off = np.ones(self.model.n_actions, dtype=bool)
        off[arms] = False
        full.col_upper[: self.model.n_actions][off] = 0.0
        return full


def _with_order_rows(milp: MatrixMILP, cols: np.ndarray, keep: np.ndarray) -> MatrixMILP:
    """Append a[slot k] - a[slot k + 1] >= 0 within each class (slots are in rank order)."""
    firsts = np.r_[0, np.cumsum(keep)][:-1]
    pairs = [
        (cols[s + k], cols[s + k + 1])
        for s, m in zip(firsts.tolist(), keep.tolist(), strict=True)
        for k in range(m - 1)
    ]
    if not pairs:
        return milp
    hi_cols, lo_cols = (np.asarray(v, dtype=np.int64) for v in zip(*pairs, strict=True))
    m = len(pairs)
    rows = np.r_[np.arange(m), np.arange(m)]
    extra = sp.csr_matrix((np.r_[np.ones(m), -np.ones(m)], (rows, np.r_[hi_cols, lo_cols])), shape=(m, milp.n_cols))
    return MatrixMILP(
        c=milp.c,
        A=sp.vstack([milp.A, extra], format="csr"),
        row_lower=np.r_[milp.row_lower, np.zeros(m)],
        row_upper=np.r_[milp.row_upper, np.full(m, np.inf)],
        col_lower=milp.col_lower,
        col_upper=milp.col_upper,
        integer=milp.integer,
        sense=milp.sense,
        offset=milp.offset,
        row_names=[*milp.row_names, *(f"class_order[{k}]" for k in range(m))] if milp.row_names else [],
        col_names=milp.col_names,
    )


def _count_milp(rows: CountRows, slot_class: np.ndarray, n_classes: int) -> MatrixMILP:
    """Template slots (binary, one per kept arm) plus the count rows' auxiliaries: each count column n_c of the
    rows becomes the sum of class c's slots."""
    A, lo, hi, w_lo, w_hi, w_int = rows
    A = sp.csr_matrix(A)
    if A.shape[1] < n_classes:
        raise ValueError(f"class_count_rows: expected at least {n_classes} count columns, got {A.shape[1]}")
    n_slots, n_w = slot_class.size, A.shape[1] - n_classes
    expand = sp.csr_matrix((np.ones(n_slots), (slot_class, np.arange(n_slots))), shape=(n_classes, n_slots))
    full = sp.hstack([A[:, :n_classes] @ expand, A[:, n_classes:]], format="csr")
    return MatrixMILP(
        c=np.zeros(n_slots + n_w),
        A=full,
        row_lower=np.asarray(lo, float),
        row_upper=np.asarray(hi, float),
        col_lower=np.r_[np.zeros(n_slots), np.asarray(w_lo, float)],
        col_upper=np.r_[np.ones(n_slots), np.asarray(w_hi, float)],
        integer=np.r_[np.ones(n_slots, bool), np.asarray(w_int, bool)],
        sense="max",
    )
