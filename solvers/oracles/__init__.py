"""Exact combinatorial oracles: ``max w @ a + offset`` over a domain's feasible set, without a general MILP.

An oracle applies to an :class:`~scenarios.action_model.ActionModel` whose domain declared its
:class:`~scenarios.action_model.Structure` (and whose rows are still exactly the domain's: a model with user
rows or other blocks has no structure, and the MILP path stays). A new oracle is one file plus one line in
:data:`ORACLES` (``kind -> "module:Class"``); each class says through ``applies(model)`` whether its size
limits admit the model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from solvers.oracles.base import LinearOracle

if TYPE_CHECKING:
    from scenarios.action_model import ActionModel

ORACLES: dict[str, str] = {
    "budget": "solvers.oracles.budget:BudgetOracle",
    "capacity": "solvers.oracles.capacity:CapacityOracle",
    "scheduling": "solvers.oracles.scheduling:SchedulingOracle",
    "routing": "solvers.oracles.routing:RoutingOracle",
}


def oracle_for(model: ActionModel) -> LinearOracle | None:
    """The exact oracle for ``model``'s declared structure, or None when none applies."""
    structure = model.structure
    if structure is None or structure.kind not in ORACLES:
        return None
    module, _, name = ORACLES[structure.kind].partition(":")
    cls = getattr(importlib.import_module(module), name)
    return cls(model) if cls.applies(model) else None


__all__ = ["ORACLES", "LinearOracle", "oracle_for"]
