"""How an instance holds the user's blocks: validated as data, checked against the instance's size, and
composed after the domain's own blocks into the instance's ActionModel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from scenarios.action_model import ActionModel
from scenarios.constraints.base import BlockBase
from solvers.milp import MatrixMILP


def parse_instance_constraints(data: Any) -> Any:
    """A ``mode="before"`` model validator: parse ``data["constraints"]`` into blocks, naming a bad field as
    ``constraints[2].caps[1]`` (raised without a pydantic location, so the message's field is used)."""
    from scenarios.constraints import parse_blocks

    if isinstance(data, dict) and data.get("constraints") is not None:
        data = {**data, "constraints": parse_blocks(data["constraints"])}
    return data


def check_instance_constraints(instance: Any) -> None:
    """Raise ``ValueError("constraints[k].field: reason")`` when a user block does not fit ``instance`` (a model
    validator; the domain's own validators report a malformed instance)."""
    blocks = getattr(instance, "constraints", None) or []
    if not blocks:
        return
    try:
        n_actions = int(instance.n_actions)
    except (IndexError, ValueError, TypeError):  # the domain's data is malformed: its validator says how
        return
    for k, block in enumerate(blocks):
        try:
            block.check(n_actions)
        except ValueError as exc:
            raise ValueError(f"constraints[{k}].{exc}") from None


def domain_model(name: str, n_actions: int, domain: Sequence[BlockBase], user: Sequence[BlockBase]) -> ActionModel:
    """The domain's blocks (names unchanged) then the user's (``constraints[k]:`` before each row name)."""
    from scenarios.constraints.compose import compose

    labels = [None] * len(domain) + [f"constraints[{k}]" for k in range(len(user))]
    return compose([*domain, *user], n_actions, name, labels)


def with_user_rows(milp: MatrixMILP, n_actions: int, user: Sequence[BlockBase]) -> MatrixMILP:
    """``milp`` (whose first ``n_actions`` columns are the action entries) with the user's blocks' rows added,
    their auxiliary variables as new columns: for domains that build their own objective MILP."""
    if not user:
        return milp
    from scenarios.constraints.compose import compose

    extra = compose(list(user), n_actions, "user", [f"constraints[{k}]" for k in range(len(user))])
    A = extra.A.tocsc()
    rows = sp.hstack(
        [A[:, :n_actions], sp.csr_matrix((A.shape[0], milp.n_cols - n_actions)), A[:, n_actions:]], format="csr"
    )
    width = sp.csr_matrix((milp.n_rows, extra.n_aux))
    return MatrixMILP(
        c=np.concatenate([milp.c, np.zeros(extra.n_aux)]),
        A=sp.vstack([sp.hstack([milp.A, width], format="csr"), rows], format="csr"),
        row_lower=np.concatenate([milp.row_lower, extra.row_lower]),
        row_upper=np.concatenate([milp.row_upper, extra.row_upper]),
        col_lower=np.concatenate([milp.col_lower, extra.aux_lower]),
        col_upper=np.concatenate([milp.col_upper, extra.aux_upper]),
        integer=np.concatenate([milp.integer, extra.aux_integer]),
        sense=milp.sense,
        offset=milp.offset,
        row_names=[*milp.row_names, *extra.row_names] if milp.row_names else [],
        col_names=[*milp.col_names, *extra.aux_names] if milp.col_names else [],
    )
