"""User constraints: extend a scenario's feasible set with your own linear pyomo constraints.

The user writes constraints over ``m.a[j]`` (binary, one per action entry) of a pyomo model; each becomes a
named row ``user:<constraint name>`` of a new :class:`~scenarios.action_model.ActionModel`. Everything
downstream reads the rows (MILP selectors, back-ends, ``is_feasible``, ``violations``, ``enumerate``,
greedy construction), and the domain's fast oracle is wrapped so that it cannot ignore them:
feasibility and certificates check the new rows first, and sampling rejects samples that violate them
(falling back to a MILP with a random objective over all rows when rejection keeps failing).

    def build(m):
        m.no_both = pyomo.environ.Constraint(expr=m.a[0] + m.a[1] <= 1)
    model = env.action_model().with_constraints(build)        # or add_pyomo_constraints(model, build)
    engine.model = engine.model.with_constraints(build)       # every selector of the engine respects it

The returned model remembers the rows as a ``linear`` block (``model.blocks[-1]``, labelled ``user``), but a
model swapped into an engine is not saved with it. To keep them in checkpoints, enforce them in ``env.step`` and
send them over REST, put the block in the instance instead (preferred)::

    instance = instance.model_copy(update={"constraints": [*instance.constraints, pyomo_block(build, n)]})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np
import pyomo.environ as pe
import scipy.sparse as sp
from pyomo.repn import generate_standard_repn

from scenarios.action_model import ActionModel
from scenarios.constraints.linear import LinearBlock, LinearRow
from scenarios.feasibility import FeasibilityOracle


def _action_rows(m: pe.ConcreteModel, n: int, prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Dense (k, n) coefficients, lower, upper and names of every active constraint of ``m`` over ``m.a``."""
    index = {id(m.a[j]): j for j in range(n)}
    coefs, lows, ups, names = [], [], [], []
    for con in m.component_data_objects(pe.Constraint, active=True, descend_into=True):
        repn = generate_standard_repn(con.body, compute_values=True)
        if not repn.is_linear():
            raise ValueError(f"constraint {con.name!r} is not linear; only linear constraints over m.a are supported")
        row = np.zeros(n)
        for var, coef in zip(repn.linear_vars, repn.linear_coefs, strict=True):
            if id(var) not in index:
                raise ValueError(f"constraint {con.name!r} uses {var.name!r}; only the action variables m.a[j]")
            row[index[id(var)]] += float(coef)
        const = float(repn.constant or 0.0)
        lo = -np.inf if con.lower is None else float(pe.value(con.lower)) - const
        hi = np.inf if con.upper is None else float(pe.value(con.upper)) - const
        coefs.append(row)
        lows.append(lo)
        ups.append(hi)
        names.append(f"{prefix}:{con.name}")
    return np.array(coefs).reshape(-1, n), np.array(lows), np.array(ups), names


def _keeps_downward_closure(coefs: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> bool:
    """Rows ``c a <= u`` with ``c >= 0`` and ``u >= 0`` (or ``c a >= l`` with ``c <= 0`` and ``l <= 0``) keep a
    downward-closed set closed and keep ``a = 0`` in it (the same rule as
    :func:`scenarios.constraints.base.keeps_downward_closure`)."""
    from scenarios.constraints.base import keeps_downward_closure

    return keeps_downward_closure(coefs, lower, upper)


class UserRowsOracle:
    """A domain oracle that also enforces the user's action-only rows."""

    def __init__(
        self,
        base: FeasibilityOracle,
        coefs: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        fallback: ActionModel,
        tries: int = 200,
    ) -> None:
        self.base, self.coefs, self.lower, self.upper = base, coefs, lower, upper
        self.fallback, self.tries = fallback, tries

    def _rows_ok(self, a: np.ndarray) -> bool:
        v = self.coefs @ np.asarray(a, dtype=float)
        return bool(np.all((v >= self.lower - 1e-9) & (v <= self.upper + 1e-9)))

    def is_feasible(self, a: np.ndarray) -> bool:
        return self._rows_ok(a) and bool(self.base.is_feasible(a))

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        return self.base.certificate(a) if self._rows_ok(a) else None

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        for _ in range(self.tries):
            a = np.asarray(self.base.sample(rng), dtype=np.int64)
            if self._rows_ok(a):
                return a
        return self.fallback.sample(rng)


def _pyomo_rows(
    n: int, build: Callable[[pe.ConcreteModel], Iterable[object] | None], prefix: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    m = pe.ConcreteModel()
    m.a = pe.Var(range(n), within=pe.Binary)
    returned = build(m)
    if returned is not None:
        m.user_list = pe.ConstraintList()
        for expr in returned:
            m.user_list.add(expr)
    return _action_rows(m, n, prefix)


def _as_block(coefs: np.ndarray, lower: np.ndarray, upper: np.ndarray, names: list[str]) -> LinearBlock:
    """The rows as a ``linear`` block (a ranged row becomes a ``>=`` and a ``<=`` row)."""
    rows: list[LinearRow] = []
    for c, lo, hi, name in zip(coefs, lower, upper, names, strict=True):
        terms = {f"a[{j}]": float(c[j]) for j in np.flatnonzero(c)}
        if lo == hi:
            rows.append(LinearRow(terms=terms, sense="==", rhs=float(hi), name=name))
            continue
        if np.isfinite(lo):
            rows.append(LinearRow(terms=terms, sense=">=", rhs=float(lo), name=name))
        if np.isfinite(hi):
            rows.append(LinearRow(terms=terms, sense="<=", rhs=float(hi), name=name))
    return LinearBlock(rows=rows)


def pyomo_block(build: Callable[[pe.ConcreteModel], Iterable[object] | None], n_actions: int) -> LinearBlock:
    """The linear constraints ``build(m)`` adds over ``m.a`` as a ``linear`` block (plain data: put it in an
    instance's ``constraints`` to save it with checkpoints and enforce it everywhere)."""
    coefs, lower, upper, names = _pyomo_rows(n_actions, build, "")
    return _as_block(coefs, lower, upper, [n.removeprefix(":") for n in names])


def add_pyomo_constraints(
    model: ActionModel, build: Callable[[pe.ConcreteModel], Iterable[object] | None], prefix: str = "user"
) -> ActionModel:
    """A new ActionModel: ``model``'s rows plus the linear constraints ``build(m)`` adds over ``m.a``.

    ``build`` receives a pyomo ``ConcreteModel`` with ``m.a`` (binary, indexed ``0..n_actions-1``); it may
    add ``Constraint``/``ConstraintList`` components, or return an iterable of relational expressions. The new
    model remembers the rows as a ``linear`` block labelled ``prefix``.
    """
    coefs, lower, upper, names = _pyomo_rows(model.n_actions, build, prefix)
    if coefs.shape[0] == 0:
        return model
    if np.any(lower > upper):
        bad = [names[i] for i in np.flatnonzero(lower > upper)]
        raise ValueError(f"constraints with lower > upper: {', '.join(bad)}")
    extra = sp.hstack([sp.csr_matrix(coefs), sp.csr_matrix((coefs.shape[0], model.n_aux))], format="csr")
    closed = model.downward_closed and _keeps_downward_closure(coefs, lower, upper)
    rows = dataclasses.replace(
        model,
        A=sp.vstack([model.A, extra], format="csr"),
        row_lower=np.concatenate([model.row_lower, lower]),
        row_upper=np.concatenate([model.row_upper, upper]),
        row_names=[*model.row_names, *names],
        downward_closed=closed,
        oracle=None,
        structure=None,
        blocks=[*model.blocks, _as_block(coefs, lower, upper, [n.removeprefix(f"{prefix}:") for n in names])],
        block_labels=[*model.block_labels, prefix],
        block_aux=[*model.block_aux, (model.n_aux, model.n_aux)],
        _cache={},
        _solver=None,
    )
    if model.oracle is None:
        return rows
    oracle = UserRowsOracle(model.oracle, coefs, lower, upper, fallback=rows)
    return dataclasses.replace(rows, oracle=oracle, _cache={}, _solver=None)
