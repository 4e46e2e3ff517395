"""ActionModel: the feasible set of joint actions as linear rows, the single source of truth for feasibility.

Variables are ``z = [a ; y]``: ``n_actions`` binary action entries ``a`` followed by auxiliary variables
``y`` (assignments, walk arcs, ...). An action ``a`` is feasible when some ``y`` satisfies
``row_lower <= A z <= row_upper`` with the auxiliary bounds and integrality. A scenario may attach a fast
combinatorial ``oracle`` (exact feasibility, random feasible samples, a certificate ``y``); tests check the
oracle against the rows. Without an oracle every question is answered by a small MILP on ``backend`` (HiGHS).

Domains build their models from constraint blocks (:mod:`scenarios.constraints`); ``blocks``, ``block_labels``
and ``block_aux`` record which block owns which auxiliaries, so :meth:`ActionModel.assignment` can decode a
certificate (workers, slots, route) for a decision.

A domain may also declare its :class:`Structure` (what its rows encode, as plain data), which exact
combinatorial optimisers (:mod:`solvers.oracles`) read. The structure binds to the rows it was declared with:
a model derived with other rows (user rows, another block) has ``structure`` None.
"""

from __future__ import annotations

import inspect
import itertools
import math
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from scenarios.errors import EnumerationTimeoutError, InfeasibleActionError
from scenarios.feasibility import EnumerableOracle, FeasibilityOracle, QuickFeasibility
from scenarios.structure import Structure, rows_digest
from scenarios.validation import as_int_vector
from solvers.backends.registry import Backend, resolve_backend
from solvers.milp import MatrixMILP

if TYPE_CHECKING:
    from engine.protocols import MilpBackend


@dataclass
class ActionModel:
    """Feasible set ``{a in {0,1}^n : exists y, row_lower <= A [a; y] <= row_upper}``."""

    name: str
    n_actions: int
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    row_names: list[str]
    aux_lower: np.ndarray
    aux_upper: np.ndarray
    aux_integer: np.ndarray
    aux_names: list[str] = field(default_factory=list)
    downward_closed: bool = True
    oracle: FeasibilityOracle | None = None
    structure: Structure | None = None
    blocks: list = field(default_factory=list, compare=False)  # the constraint blocks composed into this model
    block_labels: list = field(default_factory=list, compare=False)  # None (the domain's) or the user's label
    block_aux: list = field(default_factory=list, compare=False)  # (start, stop) of each block's auxiliaries
    _cache: dict = field(default_factory=dict, repr=False, compare=False)
    backend: Backend = field(default="highs", repr=False, compare=False)  # a back-end name or a solver object
    _solver: MilpBackend | None = field(default=None, repr=False, compare=False)
    _certs: dict = field(default_factory=dict, init=False, repr=False, compare=False)  # recent certificates
    # identity for caches (selectors, batch oracles): unique across processes, renewed on every copy or unpickle
    uid: int = field(default_factory=lambda: uuid.uuid4().int, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.A = sp.csr_matrix(self.A)
        if self.A.shape[1] != self.n_vars:
            raise ValueError(f"A has {self.A.shape[1]} columns, expected {self.n_vars}")
        if len(self.row_names) != self.A.shape[0]:
            raise ValueError("one row name per row is required")
        action_cols = self.A[:, : self.n_actions]
        aux_cols = self.A[:, self.n_actions :]
        self._action_only_rows = np.flatnonzero(np.diff(aux_cols.tocsr().indptr) == 0)
        self._action_only_A = action_cols[self._action_only_rows]
        if self.structure is not None:  # bind a declared structure to these rows; drop it on any other rows
            digest = rows_digest(self)
            if not self.structure.rows_digest:
                self.structure = replace(self.structure, rows_digest=digest)
            elif self.structure.rows_digest != digest:
                self.structure = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_solver"] = None  # highspy models cannot be pickled (nor a solver object given as back-end)
        state["backend"] = self.backend if isinstance(self.backend, str) else "highs"
        state["_cache"] = {}
        state["_certs"] = {}
        state["uid"] = uuid.uuid4().int
        return state

    # ------------------------------------------------------------------------------ structure
    @property
    def n_aux(self) -> int:
        return int(self.aux_lower.shape[0])

    @property
    def n_vars(self) -> int:
        return self.n_actions + self.n_aux

    def milp(self, action_objective: np.ndarray, offset: float = 0.0) -> MatrixMILP:
        """Maximise ``action_objective @ a + offset`` over the feasible set."""
        c = np.zeros(self.n_vars)
        c[: self.n_actions] = action_objective
        return MatrixMILP(
            c=c,
            A=self.A.copy(),
            row_lower=self.row_lower.astype(float),
            row_upper=self.row_upper.astype(float),
            col_lower=np.concatenate([np.zeros(self.n_actions), self.aux_lower]).astype(float),
            col_upper=np.concatenate([np.ones(self.n_actions), self.aux_upper]).astype(float),
            integer=np.concatenate([np.ones(self.n_actions, bool), self.aux_integer.astype(bool)]),
            sense="max",
            offset=offset,
            row_names=list(self.row_names),
            col_names=[f"a[{j}]" for j in range(self.n_actions)] + list(self.aux_names),
        )

    def with_constraints(self, build, prefix: str = "user") -> ActionModel:
        """This feasible set plus the user's linear pyomo constraints over ``m.a`` (see
        :mod:`scenarios.user_constraints`)."""
        from scenarios.user_constraints import add_pyomo_constraints

        return add_pyomo_constraints(self, build, prefix)

    # ----------------------------------------------------------------------------- validation
    def validate(self, action: object, field_name: str = "action") -> np.ndarray:
        """Return ``action`` as a 0/1 int vector of the right length, or raise naming the field."""
        return as_int_vector(action, field_name, self.n_actions, 0, 1)

    def check(self, action: object) -> np.ndarray:
        """Validate and require feasibility; raises :class:`InfeasibleActionError` naming constraints. With an
        oracle the check finds (and remembers) a certificate, so that :meth:`assignment` costs nothing more."""
        a = self.validate(action)
        key = np.asarray(a, dtype=np.int8).tobytes()
        if self.oracle is not None and self.n_aux and key not in self._cache and not self._action_rows_violated(a).size:
            self._cache[key] = self.certificate(a) is not None
        if not self.is_feasible(a):
            raise InfeasibleActionError(self.violations(a))
        return a

    # ---------------------------------------------------------------------------- feasibility
    def is_feasible(self, a: np.ndarray) -> bool:
        key = np.asarray(a, dtype=np.int8).tobytes()
        hit = self._cache.get(key)
        if hit is None:
            a = np.asarray(a)
            if self._action_rows_violated(a).size:
                hit = False
            elif self.oracle is not None:
                hit = bool(self.oracle.is_feasible(a))
            else:
                hit = self._solve_fixed(a, lower_only=False) is not None
            if len(self._cache) > 200_000:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def extendable(self, a: np.ndarray, closed: np.ndarray | None = None) -> bool:
        """Whether some feasible action contains every entry of ``a`` that is 1 and none of the ``closed`` entries
        (unavailable at a state; greedy construction)."""
        a = np.asarray(a)
        shut = closed is not None and bool(np.any(closed))
        if shut and np.any(a[np.asarray(closed, dtype=bool)]):
            return False
        within = getattr(self.oracle, "extendable_within", None)
        if within is not None:
            return bool(within(a, np.zeros(self.n_actions, bool) if closed is None else np.asarray(closed, bool)))
        if self.downward_closed:
            return self.is_feasible(a)
        return self._solve_fixed(a, lower_only=True, closed=closed if shut else None) is not None

    def feasible_with(self, a: np.ndarray, aux: np.ndarray) -> bool:
        """Whether ``aux`` certifies ``a`` (every row, bound and integrality holds; O(nonzeros)), e.g. the
        auxiliary part of a MILP solution. A positive verdict is remembered for ``a``; a negative one says
        nothing about ``a`` (another certificate may exist)."""
        a = np.asarray(a, dtype=float)
        y = np.asarray(aux, dtype=float).reshape(-1).copy()
        if y.size != self.n_aux or a.size != self.n_actions:
            return False
        y[self.aux_integer] = np.round(y[self.aux_integer])
        if np.any(y < self.aux_lower - 1e-9) or np.any(y > self.aux_upper + 1e-9):
            return False
        v = self.A @ np.concatenate([a, y])
        if np.any(v < self.row_lower - 1e-6) or np.any(v > self.row_upper + 1e-6):
            return False
        key = np.asarray(a, dtype=np.int8).tobytes()
        self._cache[key] = True
        self._remember_certificate(key, y)
        return True

    def quickly_extendable(self, a: np.ndarray) -> bool:
        """A sound, cheap filter for greedy construction: True only when ``a`` is known to extend to a feasible
        action. Exact (:meth:`extendable`) unless the oracle can only settle the question expensively (the
        routing oracle's tour search over many nodes), in which case such an ``a`` counts as not extendable."""
        quick = self.oracle.quick_feasible if isinstance(self.oracle, QuickFeasibility) else None
        if not self.downward_closed or quick is None:
            return self.extendable(a)
        key = np.asarray(a, dtype=np.int8).tobytes()
        if key in self._cache:
            return self._cache[key]
        if self._action_rows_violated(np.asarray(a)).size:
            return False
        verdict = quick(np.asarray(a))
        if verdict is not None:
            self._cache[key] = verdict
        return bool(verdict)

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        """Auxiliary values that make ``a`` feasible (None when infeasible); remembered per action."""
        if self.n_aux == 0:
            return np.zeros(0) if self.is_feasible(a) else None
        key = np.asarray(a, dtype=np.int8).tobytes()
        if key in self._certs:
            hit = self._certs[key]
            return None if hit is None else hit.copy()
        if self.oracle is not None:
            y = self.oracle.certificate(np.asarray(a))
        else:
            z = self._solve_fixed(np.asarray(a), lower_only=False)
            y = None if z is None else z[self.n_actions :]
        self._remember_certificate(key, y)
        return None if y is None else np.array(y, dtype=float)

    def _remember_certificate(self, key: bytes, y: np.ndarray | None) -> None:
        if len(self._certs) >= 64:  # the last few decisions' certificates, not every action ever checked
            self._certs.clear()
        self._certs[key] = None if y is None else np.array(y, dtype=float)

    def assignment(self, a: np.ndarray, aux: np.ndarray | None = None) -> dict:
        """The certificate of ``a`` as data, decoded by the blocks that own the auxiliary variables (e.g.
        ``{"workers": {"0": [3, 5]}, "route": [...]}``); a labelled (user) block's part sits under its label.
        ``aux`` defaults to :meth:`certificate`; empty when ``a`` is infeasible or no block says anything."""
        if not self.blocks:
            return {}
        a = np.asarray(a)
        y = self.certificate(a) if aux is None else np.asarray(aux, dtype=float)
        if y is None:
            return {}
        out: dict = {}
        for block, label, (lo, hi) in zip(self.blocks, self.block_labels, self.block_aux, strict=True):
            part = block.assignment(a, y[lo:hi])
            if part and label is not None:
                out[label] = part
            else:
                out.update(part)
        return out

    def violations(self, a: np.ndarray) -> list[str]:
        """Names of the violated constraints (empty when ``a`` is feasible)."""
        a = np.asarray(a)
        direct = self._action_rows_violated(a)
        if direct.size:
            return [self.row_names[self._action_only_rows[i]] for i in direct]
        if self.is_feasible(a):
            return []
        return self._elastic_violations(a)

    def _action_rows_violated(self, a: np.ndarray) -> np.ndarray:
        if self._action_only_rows.size == 0:
            return self._action_only_rows
        v = self._action_only_A @ a
        rows = self._action_only_rows
        return np.flatnonzero((v < self.row_lower[rows] - 1e-9) | (v > self.row_upper[rows] + 1e-9))

    def _fixed_milp(self, a: np.ndarray, lower_only: bool, objective: np.ndarray | None = None) -> MatrixMILP:
        milp = self.milp(np.zeros(self.n_actions) if objective is None else objective)
        milp.col_lower[: self.n_actions] = a
        if not lower_only:
            milp.col_upper[: self.n_actions] = a
        return milp

    def _milp_solver(self) -> MilpBackend:
        if self._solver is None:
            self._solver = resolve_backend(self.backend, mip_rel_gap=1e-6)
        return self._solver

    def _solve_fixed(self, a: np.ndarray, lower_only: bool, closed: np.ndarray | None = None) -> np.ndarray | None:
        """A feasible [a ; y] with ``a`` fixed (``lower_only``: its ones fixed), the ``closed`` entries at 0."""
        milp = self._fixed_milp(a, lower_only)
        if closed is not None:
            milp.col_upper[: self.n_actions][np.asarray(closed, dtype=bool)] = 0.0
        sol = self._milp_solver().solve(milp, time_limit=10.0, mip_rel_gap=1e-6)
        return sol.x if sol.x is not None else None

    def _elastic_violations(self, a: np.ndarray) -> list[str]:
        """Minimise total slack over the rows with ``a`` fixed; the rows that need slack are violated."""
        base = self._fixed_milp(a, lower_only=False)
        m = base.n_rows
        eye = sp.identity(m, format="csr")
        A = sp.hstack([base.A, eye, -eye], format="csr")
        c = np.concatenate([np.zeros(base.n_cols), -np.ones(2 * m)])
        elastic = MatrixMILP(
            c=c,
            A=A,
            row_lower=base.row_lower,
            row_upper=base.row_upper,
            col_lower=np.concatenate([base.col_lower, np.zeros(2 * m)]),
            col_upper=np.concatenate([base.col_upper, np.full(2 * m, np.inf)]),
            integer=np.concatenate([base.integer, np.zeros(2 * m, bool)]),
            sense="max",
        )
        sol = resolve_backend(self.backend, mip_rel_gap=1e-6).solve(elastic, time_limit=10.0, mip_rel_gap=1e-6)
        if sol.x is None:
            return ["bounds"]
        slack = sol.x[base.n_cols : base.n_cols + m] + sol.x[base.n_cols + m :]
        return [self.row_names[i] for i in np.flatnonzero(slack > 1e-7)] or ["integrality"]

    # ------------------------------------------------------------------------------- sampling
    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """A random feasible action (the oracle's sampler, else a MILP with a random objective)."""
        if self.oracle is not None:
            return np.asarray(self.oracle.sample(rng), dtype=np.int64)
        objective = rng.uniform(0.0, 1.0, self.n_actions)
        sol = self._milp_solver().solve(self.milp(objective), time_limit=10.0, mip_rel_gap=1e-6)
        if sol.x is None:
            raise RuntimeError(f"feasible set {self.name!r} is empty")
        return np.round(sol.x[: self.n_actions]).astype(np.int64)

    def count_upper_bound(self) -> int:
        """A cheap upper bound on the number of feasible actions: ``sum_{k <= K} C(n, k)`` where K bounds the
        ones of a feasible action (a small MILP, memoised; n when nothing is proven), or ``2^n`` when the set is
        not downward closed."""
        n = self.n_actions
        if isinstance(self.oracle, EnumerableOracle):
            return self.oracle.count_bound()
        if not self.downward_closed:
            lo, hi = self.cardinality_range()
            return sum(math.comb(n, k) for k in range(lo, hi + 1))
        bound = self.__dict__.get("_count_bound")
        if bound is None:
            from solvers.formulations.network_milp import max_cardinality

            try:
                k = max_cardinality(self.milp(np.zeros(n)), n)
            except ValueError:  # empty feasible set
                k = 0
            bound = sum(math.comb(n, i) for i in range(n + 1 if k is None else k + 1))
            self.__dict__["_count_bound"] = bound
        return bound

    def cardinality_range(self) -> tuple[int, int]:
        """Proven (least, most) ones of a feasible action (two small MILPs, memoised; (0, n) when nothing is
        proven): a set of exactly-B actions gives (B, B), and its enumeration runs over C(n, B) subsets."""
        found = self.__dict__.get("_cardinality_range")
        if found is None:
            from solvers.formulations.network_milp import cardinality_range

            try:
                found = cardinality_range(self.milp(np.zeros(self.n_actions)), self.n_actions)
            except ValueError:  # empty feasible set
                found = (0, 0)
            self.__dict__["_cardinality_range"] = found
        return found

    def enumerate(
        self, max_count: int = 200_000, max_seconds: float | None = None, closed: np.ndarray | None = None
    ) -> np.ndarray:
        """Every feasible action as rows of a 0/1 matrix; raises when there are more than ``max_count``.

        When :meth:`count_upper_bound` is within ``max_count`` the work is bounded by it. Otherwise counting
        stops (and enumeration is refused) as soon as ``max_count`` is passed, or after ``max_seconds`` (None:
        no time limit; 0: refuse at once, from the bound alone). ``closed``: only the actions with none of these
        entries (a state's unavailable ones), listed directly by an :class:`EnumerableOracle`, else filtered
        from the whole set (whose size ``max_count`` then limits)."""
        start = time.perf_counter()
        bound = self.count_upper_bound()
        limited = bound > max_count and max_seconds is not None  # the bound alone does not prove the set small
        deadline = start + max_seconds if limited and max_seconds is not None else None

        def check_time() -> None:
            if deadline is not None and time.perf_counter() > deadline:
                raise EnumerationTimeoutError(
                    f"more than {max_count} feasible actions are possible (at most {bound}) and "
                    f"counting them did not finish within {max_seconds} s; enumeration refused"
                )

        def listed(shut: np.ndarray | None) -> np.ndarray:
            """The oracle's own listing, refused past the deadline with the same message. An oracle written
            before the deadline existed (no ``deadline`` parameter) lists to the end: its time cannot be limited."""
            assert isinstance(self.oracle, EnumerableOracle)
            if deadline is None or not _takes_deadline(self.oracle):
                return self.oracle.enumerate_all(max_count, shut)
            try:
                return self.oracle.enumerate_all(max_count, shut, deadline=deadline)
            except EnumerationTimeoutError:
                check_time()  # the deadline stopped it: say so in the one message (the count's refusal passes as is)
                raise

        if closed is not None and np.any(closed):
            shut = np.asarray(closed, dtype=bool)
            if isinstance(self.oracle, EnumerableOracle):
                return listed(shut)
            every = self.enumerate(max_count, max_seconds)
            return every[~np.any(every[:, shut] > 0, axis=1)]
        n = self.n_actions
        check_time()
        if isinstance(self.oracle, EnumerableOracle):
            return listed(None)
        if self.downward_closed:
            found: list[tuple[int, ...]] = [()]
            level: list[tuple[int, ...]] = [()]
            while level:
                known = set(level)
                nxt: list[tuple[int, ...]] = []
                for s in level:
                    check_time()
                    for j in range((s[-1] + 1) if s else 0, n):
                        cand = (*s, j)
                        if len(cand) > 1 and any(cand[:i] + cand[i + 1 :] not in known for i in range(len(cand))):
                            continue
                        a = np.zeros(n, dtype=np.int64)
                        a[list(cand)] = 1
                        if self.is_feasible(a):
                            nxt.append(cand)
                            if len(found) + len(nxt) > max_count:  # refuse now, not after the whole level
                                raise ValueError(f"more than {max_count} feasible actions; enumeration refused")
                found += nxt
                level = nxt
            out = np.zeros((len(found), n), dtype=np.int64)
            for i, s in enumerate(found):
                out[i, list(s)] = 1
            return out
        # not downward closed: every subset of a size a feasible action can have (``bound`` of them), checked one
        # by one
        if bound > max(2**22, 4 * max_count):
            raise ValueError(f"{n} actions without downward closure ({bound} subsets to check): enumeration refused")
        lo, hi = self.cardinality_range()
        keep = []
        for k in range(lo, hi + 1):
            for index, ones in enumerate(itertools.combinations(range(n), k)):
                if index % 1024 == 0:
                    check_time()
                a = np.zeros(n, dtype=np.int64)
                a[list(ones)] = 1
                if self.is_feasible(a):
                    keep.append(a)
                    if len(keep) > max_count:
                        raise ValueError(f"more than {max_count} feasible actions; enumeration refused")
        return np.array(keep, dtype=np.int64).reshape(-1, n)


def _takes_deadline(oracle: EnumerableOracle) -> bool:
    """Whether ``oracle.enumerate_all`` accepts the ``deadline`` keyword (the protocol is checked by method names
    only, so an oracle written before it existed passes ``isinstance``)."""
    try:
        parameters = inspect.signature(oracle.enumerate_all).parameters
    except (TypeError, ValueError):
        return False
    return "deadline" in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
