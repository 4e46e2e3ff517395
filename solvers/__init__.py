"""Matrix-form MILP, network-to-MILP compiler, back-ends and search."""

from solvers.milp import MatrixMILP
from solvers.solution import Solution

__all__ = ["MatrixMILP", "Solution"]
