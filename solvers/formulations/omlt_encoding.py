"""An alternative encoding of the network MILP: OMLT's big-M ReLU formulation in pyomo (optional ``omlt`` extra).

The :class:`~solvers.formulations.relu_network.ReluNetwork` of one state (its first-layer weights and bias) becomes an
OMLT ``NetworkDefinition`` with the action box as input bounds; OMLT derives its own interval bounds and
writes the big-M rows; the feasible set's matrix rows are added over ``[a ; y]`` with ``a`` tied to the
network inputs; the objective is the network output. Rebuilt per state (OMLT models are not updated in
place), so it is a cross-check of :class:`~solvers.formulations.network_milp.NetworkMILP`, not a hot path.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pyomo.environ as pe

from solvers.backends.pyomo import persistent_highs, solve_pyomo
from solvers.formulations.relu_network import ReluNetwork
from solvers.milp import MatrixMILP
from solvers.solution import HEURISTIC, INFEASIBLE, Solution, relative_gap


def omlt_available() -> bool:
    try:
        import omlt  # noqa: F401
    except ImportError:
        return False
    return True


def network_definition(net: ReluNetwork, lower: np.ndarray, upper: np.ndarray):
    """OMLT ``NetworkDefinition`` of ``net`` (ReLU hidden layers, linear output) over the input box."""
    from omlt.neuralnet import NetworkDefinition
    from omlt.neuralnet.layer import DenseLayer, InputLayer, Layer

    n = net.n_inputs
    bounds = {i: (float(lo), float(hi)) for i, (lo, hi) in enumerate(zip(lower, upper, strict=True))}
    nd = NetworkDefinition(scaled_input_bounds=bounds)
    prev: Layer = InputLayer([n])
    nd.add_layer(prev)
    last = len(net.weights) - 1
    for layer, (W, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        dense = DenseLayer(
            [int(W.shape[1])],
            [int(W.shape[0])],
            weights=np.asarray(W).T,
            biases=np.asarray(b),
            activation="linear" if layer == last else "relu",
        )
        nd.add_layer(dense)
        nd.add_edge(prev, dense)
        prev = dense
    return nd


def add_matrix_rows(block, x, milp: MatrixMILP, name: str = "feasible") -> None:
    """Add ``row_lower <= A x <= row_upper`` of ``milp`` to a pyomo block over the indexed var ``x``."""
    A = milp.A.tocsr()

    def row(_, i):
        sl = slice(A.indptr[i], A.indptr[i + 1])
        body = sum(float(v) * x[int(j)] for v, j in zip(A.data[sl], A.indices[sl], strict=True))
        lo = float(milp.row_lower[i]) if np.isfinite(milp.row_lower[i]) else None
        hi = float(milp.row_upper[i]) if np.isfinite(milp.row_upper[i]) else None
        if (lo is None and hi is None) or A.indptr[i] == A.indptr[i + 1]:
            return pe.Constraint.Skip
        return (lo, body, hi)

    block.add_component(name, pe.Constraint(range(milp.n_rows), rule=row))


class OmltNetworkMILP:
    """``max net(a)`` over a feasible set with OMLT's ``ReluBigMFormulation``, solved through pyomo."""

    name = "omlt-bigm"

    def __init__(self, net: ReluNetwork, feasible: MatrixMILP, solver: object | None = None) -> None:
        """``solver``: a pyomo solver interface (default: a persistent HiGHS one per solve). The model is a pyomo
        model, not a :class:`~solvers.milp.MatrixMILP`, so this takes a pyomo solver, not a registry back-end."""
        if not omlt_available():
            raise ImportError("OMLT is not installed: pip install -c constraints.txt -e '.[omlt]'")
        self.net, self.feasible = net, feasible
        self.n_actions = net.n_inputs
        self.model: pe.ConcreteModel | None = None
        self.solver = solver

    def build(self, first_bias: np.ndarray | None = None, first_weights: np.ndarray | None = None) -> pe.ConcreteModel:
        """The pyomo model of one state (variables ``x`` = feasible-set columns, block ``nn`` = the network)."""
        from omlt import OmltBlock
        from omlt.neuralnet import ReluBigMFormulation

        f, n = self.feasible, self.n_actions
        W0 = self.net.weights[0] if first_weights is None else np.asarray(first_weights, dtype=float)
        net = ReluNetwork([W0, *self.net.weights[1:]], [self.net.first_bias(first_bias), *self.net.biases[1:]])
        m = pe.ConcreteModel()
        m.x = pe.Var(range(f.n_cols))
        for j in range(f.n_cols):
            m.x[j].setlb(float(f.col_lower[j]) if np.isfinite(f.col_lower[j]) else None)
            m.x[j].setub(float(f.col_upper[j]) if np.isfinite(f.col_upper[j]) else None)
            if f.integer[j]:
                m.x[j].domain = pe.Integers
        add_matrix_rows(m, m.x, f)
        m.nn = OmltBlock()
        m.nn.build_formulation(ReluBigMFormulation(network_definition(net, f.col_lower[:n], f.col_upper[:n])))
        m.link = pe.Constraint(range(n), rule=lambda m, j: m.x[j] == m.nn.inputs[j])
        m.obj = pe.Objective(expr=m.nn.outputs[0], sense=pe.maximize)
        self.model = m
        return m

    def solve(
        self,
        first_bias: np.ndarray | None = None,
        first_weights: np.ndarray | None = None,
        time_limit: float | None = None,
        mip_rel_gap: float = 1e-4,
    ) -> Solution:
        """Build and solve one state's model; ``x`` of the solution is over the feasible-set columns."""
        start = time.perf_counter()
        m = self.build(first_bias, first_weights)
        solver = self.solver if self.solver is not None else persistent_highs()
        status, objective, bound = solve_pyomo(m, "max", solver, time_limit, mip_rel_gap)
        seconds = time.perf_counter() - start
        if status == INFEASIBLE:
            return Solution(None, -math.inf, -math.inf, math.inf, INFEASIBLE, seconds)
        if status == HEURISTIC:
            return Solution(None, -math.inf, math.inf, math.inf, HEURISTIC, seconds)
        x = np.array([m.x[j].value or 0.0 for j in range(self.feasible.n_cols)], dtype=float)
        x[self.feasible.integer] = np.round(x[self.feasible.integer])
        bound = max(bound, objective)
        return Solution(x, objective, bound, relative_gap(objective, bound), status, seconds)

    def decode(self, x: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(x)[: self.n_actions]).astype(np.int64)
