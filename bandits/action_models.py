"""ActionModel helpers for bandits: a budget-only feasible set, and JSON + npz state of any ActionModel.

The saved state keeps the linear rows, bounds and names; a scenario's fast ``oracle`` object is not data
and is dropped (feasibility then comes from the rows, which are the source of truth).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from scenarios.action_model import ActionModel
from scenarios.errors import InvalidInputError


def budget_action_model(n_arms: int, budget: float, costs: np.ndarray | None = None) -> ActionModel:
    """``{a in {0,1}^n : sum_j cost_j a_j <= budget}`` (unit costs by default)."""
    if int(n_arms) != n_arms or n_arms < 1:
        raise InvalidInputError("n_arms", f"expected a positive integer, got {n_arms!r}")
    c = np.ones(n_arms) if costs is None else np.asarray(costs, dtype=float)
    if c.shape != (n_arms,) or not np.all(np.isfinite(c)) or np.any(c < 0):
        raise InvalidInputError("costs", f"expected {n_arms} non-negative numbers")
    A = sp.csr_matrix(c.reshape(1, -1))
    return ActionModel(
        name="budget",
        n_actions=int(n_arms),
        A=A,
        row_lower=np.array([-np.inf]),
        row_upper=np.array([float(budget)]),
        row_names=["budget"],
        aux_lower=np.zeros(0),
        aux_upper=np.zeros(0),
        aux_integer=np.zeros(0, bool),
        downward_closed=True,
    )


def action_model_state(model: ActionModel) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    A = sp.csr_matrix(model.A)
    meta = {
        "name": model.name,
        "n_actions": model.n_actions,
        "row_names": list(model.row_names),
        "aux_names": list(model.aux_names),
        "downward_closed": bool(model.downward_closed),
        "shape": list(A.shape),
    }
    arrays = {
        "A_data": A.data,
        "A_indices": A.indices,
        "A_indptr": A.indptr,
        "row_lower": np.asarray(model.row_lower, float),
        "row_upper": np.asarray(model.row_upper, float),
        "aux_lower": np.asarray(model.aux_lower, float),
        "aux_upper": np.asarray(model.aux_upper, float),
        "aux_integer": np.asarray(model.aux_integer, bool),
    }
    return meta, arrays


def action_model_from_state(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ActionModel:
    A = sp.csr_matrix((arrays["A_data"], arrays["A_indices"], arrays["A_indptr"]), shape=tuple(meta["shape"]))
    return ActionModel(
        name=meta["name"],
        n_actions=int(meta["n_actions"]),
        A=A,
        row_lower=arrays["row_lower"],
        row_upper=arrays["row_upper"],
        row_names=list(meta["row_names"]),
        aux_lower=arrays["aux_lower"],
        aux_upper=arrays["aux_upper"],
        aux_integer=arrays["aux_integer"].astype(bool),
        aux_names=list(meta["aux_names"]),
        downward_closed=bool(meta["downward_closed"]),
    )


def prefixed(prefix: str, items: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}{k}": v for k, v in items.items()}


def unprefixed(prefix: str, items: dict[str, Any]) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in items.items() if k.startswith(prefix)}
