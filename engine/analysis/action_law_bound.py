"""A tighter certified upper bound for small feasible sets: the occupancy LP with the joint law of the actions.

The occupancy LP (:mod:`engine.analysis.occupancy_bound`) ties arm j to the actions only through the mean of its
control value, E[x_jt] = sum_i w_ji E[a_ti]. With interventions whose reaches overlap and a sigmoid response, that
relaxation lets every good arm take its best value (two or three interventions) with some probability while the
mean budget holds, which no joint action does: the bound is 121-135% of the optimum at J = 6.

When the feasible set A can be listed (up to ``max_actions`` members), this LP adds the law of the joint action:
variables z[t, a] >= 0, sum_a z[t, a] = 1, and for every arm j and control value v

    sum_s mu_j[t, s, v] = sum_a z[t, a] [x_j(a) = v],       E[a_t] = sum_a z[t, a] a.

Any policy satisfies these rows with z[t] = the law of its action at step t (the arm's value marginal is the law
of x_j(a_t)), so the optimum still bounds the optimal return; it only forgets that the law of the action may
depend on the state. The z columns are generated: a restricted LP over a few actions per step, priced over the
whole listed set with the rows' duals (vectorised), until no action has a positive reduced cost.

The bound is certified at every round by Lagrangian duality with the convexity rows kept as constraints:
for multipliers y of the other rows, the optimum is at most
sum_rows max y_i (A x)_i + sum_{base columns} max (c - A^T y)_k x_k + sum_t max_{a in A} (c - A^T y)_{t,a},
so a bound is valid (looser) when the time limit stops the column generation after its first restricted LP.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp

from bandits.restless.occupancy_model import highs_for
from engine.analysis.occupancy_bound import BoundResult, dual_value, occupancy_upper_bound
from engine.analysis.occupancy_lp import action_only_model, build_occupancy_lp, control_structure
from scenarios.cormab.instance import CoRMABInstance
from scenarios.errors import EnumerationTimeoutError


@dataclass
class ActionLawBound:
    """``bound`` (certified), the restricted LP's value, and the column generation's statistics."""

    bound: float
    lp_value: float
    converged: bool  # no listed action had a positive reduced cost at the last round
    status: str  # "optimal" (converged), "time_limit", "max_rounds", or the solver's status when it failed
    rounds: int
    n_actions: int  # feasible joint actions listed (priced at every round)
    n_columns: int  # action columns generated (over all steps)
    seconds: float
    action_marginals: np.ndarray = field(repr=False)  # (H, N) E[a_t], per action entry, of the last restricted LP
    n_rows: int
    n_vars: int  # the occupancy LP's columns and the action columns generated
    # (J, H, S, V) what each occupancy pays through the rows that tie the arms to the actions, under the last duals:
    # with these prices the LP separates into one DP per arm (the Lagrangian planner's prices)
    mu_price: np.ndarray = field(repr=False)


def action_law_upper_bound(
    instance: CoRMABInstance,
    time_limit: float = 600.0,
    training: bool = False,
    max_actions: int = 200_000,
    columns_per_step: int = 40,
    tol: float = 1e-7,
    max_rounds: int | None = None,
    list_seconds: float | None = None,
) -> ActionLawBound:
    """Solve the occupancy LP with the joint action law (module docstring) by column generation.

    ``time_limit`` bounds the whole call (listing the actions and every LP solve), ``list_seconds`` the listing
    alone; ``max_rounds`` the rounds of column generation. Stopped early, the bound is still certified but looser,
    and infinite when not even the first restricted LP was solved. Raises ValueError (naming ``max_actions``) when
    the feasible set has more than ``max_actions`` members.
    """
    start = time.perf_counter()
    if max_actions < 1:
        raise ValueError("max_actions: must be at least 1")

    def remaining() -> float:
        return time_limit - (time.perf_counter() - start)

    model = instance.action_model()
    try:
        seconds = max(remaining(), 0.0) if list_seconds is None else min(list_seconds, max(remaining(), 0.0))
        actions = model.enumerate(max_count=max_actions, max_seconds=seconds)
    except (ValueError, EnumerationTimeoutError) as err:
        raise ValueError(f"max_actions: could not list the feasible set within {max_actions} actions ({err})") from err
    actions = np.asarray(actions, dtype=np.int64)
    if len(actions) == 0:
        raise ValueError("instance: the feasible set is empty")
    W, values, _, _ = control_structure(instance)
    x = actions @ np.asarray(W, float).T  # (M, J) control value of every arm under every action
    X = np.zeros(x.shape, dtype=np.int64)  # its index among the arm's values
    for j, v in enumerate(values):
        v = np.asarray(v, float)
        k = np.clip(np.searchsorted(v, x[:, j] - 1e-9), 0, len(v) - 1)
        if not np.allclose(v[k], x[:, j], atol=1e-9):
            raise ValueError(f"instance: a feasible action gives arm {j} a control value outside its listed values")
        X[:, j] = k

    base_model = model if model.n_aux == 0 else action_only_model(model)
    lp = build_occupancy_lp(instance, base_model, training)
    assert lp.mu is not None
    J, H, _, V = lp.mu.shape
    N = model.n_actions
    n_base = len(lp.c)
    # new rows: (a) q[t, i] - sum_a a_i z = 0, (b) sum_s mu[j, t, s, v] - sum_a [X_j(a) = v] z = 0, (c) sum_a z = 1
    q_rows = lp.A.shape[0] + np.arange(H * N).reshape(H, N)
    v_rows = q_rows.size + lp.A.shape[0] + np.arange(H * J * V).reshape(H, J, V)
    c_rows = lp.A.shape[0] + q_rows.size + v_rows.size + np.arange(H)
    n_rows = c_rows[-1] + 1
    r_q = q_rows.ravel()
    mu_r = np.broadcast_to(v_rows.transpose(1, 0, 2)[:, :, None, :], lp.mu.shape).ravel()
    extra = sp.csr_matrix(
        (
            np.ones(r_q.size + mu_r.size),
            (np.concatenate([r_q, mu_r]) - lp.A.shape[0], np.concatenate([lp.q.ravel(), lp.mu.ravel()])),
        ),
        shape=(n_rows - lp.A.shape[0], n_base),
    )
    A = sp.vstack([lp.A, extra], format="csr")
    row_lo = np.concatenate([lp.row_lo, np.zeros(q_rows.size + v_rows.size), np.ones(H)])
    row_hi = np.concatenate([lp.row_hi, np.zeros(q_rows.size + v_rows.size), np.ones(H)])
    h = highs_for(lp.c, A, row_lo, row_hi, lp.col_lo, lp.col_hi, time_limit)
    h.setOptionValue("solver", "simplex")  # warm restarts after every round of new columns
    h.setOptionValue("simplex_strategy", 4)  # primal: new columns leave the last basis primal feasible
    generated: set[tuple[int, int]] = set()

    def column(t: int, a: int) -> tuple[np.ndarray, np.ndarray]:
        on = np.flatnonzero(actions[a])
        rows = np.concatenate([q_rows[t, on], v_rows[t, np.arange(J), X[a]], [c_rows[t]]])
        vals = np.concatenate([-actions[a, on].astype(float), -np.ones(J), [1.0]])
        return rows, vals

    def add_columns(pairs: list[tuple[int, int]]) -> None:
        starts, index, value = [0], [], []
        for t, a in pairs:
            rows, vals = column(t, a)
            index.append(rows)
            value.append(vals)
            starts.append(starts[-1] + len(rows))
            generated.add((t, a))
        n = len(pairs)
        h.addCols(
            n,
            np.zeros(n),
            np.zeros(n),
            np.full(n, highspy.kHighsInf),
            starts[-1],
            np.array(starts[:-1], dtype=np.int32),
            np.concatenate(index).astype(np.int32),
            np.concatenate(value),
        )

    add_columns([(t, 0) for t in range(H)])
    # elastic columns on the new equality rows at a price above any return, so the first restricted LPs are feasible
    # (one action at every step may contradict the arms' availability or a patrol's position); they are not part of
    # the LP the certificate bounds, and a converged solution leaves them at zero
    assert lp.reward is not None
    penalty = 1.0 + H * float(np.abs(lp.reward).max(axis=(1, 2)).sum())
    elastic_rows = np.concatenate([q_rows.ravel(), v_rows.ravel()]).astype(np.int32)
    n_el = len(elastic_rows)
    for sign in (1.0, -1.0):
        h.addCols(
            n_el,
            np.full(n_el, -penalty),
            np.zeros(n_el),
            np.full(n_el, highspy.kHighsInf),
            n_el,
            np.arange(n_el, dtype=np.int32),
            elastic_rows,
            np.full(n_el, sign),
        )
    elastic = slice(n_base + H, n_base + H + 2 * n_el)
    base_c, base_lo, base_hi = lp.c, lp.col_lo, lp.col_hi
    keep = np.ones(n_rows, dtype=bool)
    keep[c_rows] = False  # the convexity rows stay constraints in the certificate
    best, lp_value, converged, rounds, status = np.inf, np.inf, False, 0, "time_limit"
    marginals = np.full(lp.q.shape, np.nan)
    last_y: np.ndarray | None = None
    while remaining() > 0:
        rounds += 1
        h.setOptionValue("time_limit", max(remaining(), 1e-3))
        h.run()
        sol = h.getSolution()
        optimal = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        if h.getInfo().primal_solution_status != 2 or not sol.dual_valid:
            status = "time_limit" if remaining() <= 0 else f"solver: {h.modelStatusToString(h.getModelStatus())}"
            break
        lp_value = float(h.getInfo().objective_function_value)
        marginals = np.clip(np.asarray(sol.col_value, float)[lp.q], 0.0, 1.0)
        duals = np.asarray(sol.row_dual, float)
        bound, rc, y = _certificate(
            duals, keep, A, row_lo, row_hi, base_c, base_lo, base_hi, q_rows, v_rows, actions, X
        )
        best, last_y = min(best, bound), y
        rc -= y[c_rows][:, None]  # the restricted LP's reduced costs: the convexity rows' duals included
        new = []
        for t in range(H):
            order = np.argsort(-rc[t])[: columns_per_step * 4]
            picked = [int(a) for a in order if rc[t, a] > tol * (1.0 + abs(lp_value)) and (t, int(a)) not in generated]
            new += [(t, a) for a in picked[:columns_per_step]]
        if not optimal:  # the restricted LP stopped early: its duals certify a bound, not convergence
            status = "time_limit" if remaining() <= 0 else f"solver: {h.modelStatusToString(h.getModelStatus())}"
            break
        if not new:
            converged = bool(np.all(np.asarray(sol.col_value)[elastic] <= 1e-9))
            status = "optimal" if converged else "infeasible restricted LP"
            break
        if max_rounds is not None and rounds >= max_rounds:
            status = "max_rounds"
            break
        add_columns(new)
    mu_price = np.zeros(lp.mu.shape)
    if last_y is not None:  # what each occupancy pays through the link, tie and value rows under the last duals
        coupling = np.zeros(n_rows)
        coupling[lp.coupling] = last_y[lp.coupling]
        coupling[v_rows.ravel()] = last_y[v_rows.ravel()]
        mu_price = (A.T @ coupling)[lp.mu]
    return ActionLawBound(
        bound=float(best),
        lp_value=lp_value,
        converged=converged,
        status=status,
        rounds=rounds,
        n_actions=len(actions),
        n_columns=len(generated),
        seconds=time.perf_counter() - start,
        action_marginals=marginals,
        n_rows=int(n_rows),
        n_vars=n_base + len(generated),
        mu_price=mu_price,
    )


#: how long listing the feasible set may take before the action law is given up (for the bound and for whether the
#: action-law planner applies). Generous on purpose: the answer must not depend on the machine's load (a short
#: limit flipped J = 20 capacity and scheduling seeds between runs). Listing a set of at most 20,000 actions took
#: at most 4.4 s at J = 20 (capacity seed 3, 14,420 actions); refusing a larger set by its count 0.6-10 s up to
#: J = 100, a J = 40 patrol's 113 s (stopped here)
LIST_SECONDS = 30.0


def tightest_upper_bound(
    instance: CoRMABInstance,
    time_limit: float = 600.0,
    training: bool = False,
    max_actions: int = 20_000,
    occupancy: BoundResult | None = None,
) -> BoundResult:
    """The occupancy bound, tightened by the action law when the feasible set lists within ``max_actions`` (within
    :data:`LIST_SECONDS`): the smaller certified value, with its method (``"action_law(k)"``: k rounds of column
    generation). ``occupancy``: the occupancy bound when the caller has it (not solved again)."""
    start = time.perf_counter()
    if occupancy is None:
        occupancy = occupancy_upper_bound(instance, time_limit=time_limit, training=training)
    left = time_limit - (time.perf_counter() - start)
    if left <= 0:
        return occupancy
    try:  # the listing gets LIST_SECONDS: the cheap count bound is loose for some sets
        law = action_law_upper_bound(
            instance, time_limit=left, training=training, max_actions=max_actions, list_seconds=LIST_SECONDS
        )
    except ValueError:  # not listable within the limits, or a structure it cannot read: the occupancy bound stands
        return occupancy
    if not law.bound < occupancy.bound:
        return occupancy
    return BoundResult(
        bound=law.bound,
        lp_value=law.lp_value,
        action_marginals=law.action_marginals,
        status="Optimal" if law.converged else law.status,
        seconds=time.perf_counter() - start,
        n_vars=law.n_vars,
        n_rows=law.n_rows,
        method=f"action_law({law.rounds})",
        converged=law.converged,
    )


def _certificate(
    duals: np.ndarray,
    keep: np.ndarray,
    A: sp.csr_matrix,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    c: np.ndarray,
    col_lo: np.ndarray,
    col_hi: np.ndarray,
    q_rows: np.ndarray,
    v_rows: np.ndarray,
    actions: np.ndarray,
    X: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The Lagrangian bound (module docstring) for both signs of the solver's duals (the smaller finite value),
    the reduced costs (H, M) of every listed action without the convexity rows, and the duals, under the sign the
    bound came from."""
    best, best_rc, best_y = np.inf, np.zeros((q_rows.shape[0], len(actions))), duals
    J = X.shape[1]
    for signed in (duals, -duals):
        y = np.where(keep, signed, 0.0)  # the convexity rows are kept as constraints, not priced
        # an action column has entries -a_i on the q rows and -1 on its value rows: reduced cost = y . (a, 1[X])
        # (those rows are equalities with finite bounds, so no multiplier of theirs is dropped by dual_value)
        rc = y[q_rows] @ actions.T.astype(float)  # (H, M)
        yv = y[v_rows]  # (H, J, V)
        rc += yv[:, np.arange(J)[None, :], X].sum(axis=2)
        total = dual_value(c, A, row_lo, row_hi, col_lo, col_hi, y) + float(rc.max(axis=1).sum())
        if np.isfinite(total) and total < best:
            best, best_rc, best_y = total, rc, signed
    return best, best_rc, best_y
