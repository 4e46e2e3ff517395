"""Constraint blocks: the feasible set as composable data (JSON), compiled to one ActionModel.

A new block is one file (a :class:`~scenarios.constraints.base.BlockBase` subclass with a ``kind`` literal) plus
one line in ``BLOCKS``. ``Block`` is the discriminated union of every registered block (by ``kind``).
"""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from pydantic import Field, TypeAdapter

from scenarios.constraints.base import BlockBase
from scenarios.constraints.budget import BudgetBlock
from scenarios.constraints.compose import compose
from scenarios.constraints.group_cap import GroupCapBlock
from scenarios.constraints.interventions import InterventionsBlock
from scenarios.constraints.linear import LinearBlock
from scenarios.constraints.routing import RoutingBlock
from scenarios.constraints.scheduling import SchedulingBlock
from scenarios.constraints.worker_capacity import WorkerCapacityBlock

BLOCKS: dict[str, type[BlockBase]] = {
    "budget": BudgetBlock,
    "worker_capacity": WorkerCapacityBlock,
    "scheduling": SchedulingBlock,
    "routing": RoutingBlock,
    "interventions": InterventionsBlock,
    "group_cap": GroupCapBlock,
    "linear": LinearBlock,
}

# the same classes as BLOCKS, written out so that type checkers see the union
Block = Annotated[
    BudgetBlock
    | WorkerCapacityBlock
    | SchedulingBlock
    | RoutingBlock
    | InterventionsBlock
    | GroupCapBlock
    | LinearBlock,
    Field(discriminator="kind"),
]
_BLOCK_LIST = TypeAdapter(list[Block])


def _path(loc: tuple) -> str:
    """``(2, 'group_cap', 'caps', 1)`` -> ``[2].caps[1]`` (the union's tag dropped)."""
    out = ""
    for k, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif k == 1 and part in BLOCKS:  # the discriminated union's tag
            continue
        else:
            out += f".{part}"
    return out


def parse_blocks(data: Any, field: str = "constraints") -> list[BlockBase]:
    """Validate a list of block dicts (or blocks); errors read ``constraints[2].caps[1]: must be >= 0``."""
    if data is None:
        return []
    try:
        return list(_BLOCK_LIST.validate_python(data))
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        where = field + _path(tuple(err["loc"]))
        inner, sep, reason = msg.partition(": ")
        if sep and " " not in inner and err["type"] == "value_error":  # "caps[1]: must be >= 0" from a validator
            where, msg = f"{where}.{inner}", reason
        raise ValueError(f"{where}: {msg}") from None


__all__ = [
    "BLOCKS",
    "Block",
    "BlockBase",
    "BudgetBlock",
    "GroupCapBlock",
    "InterventionsBlock",
    "LinearBlock",
    "RoutingBlock",
    "SchedulingBlock",
    "WorkerCapacityBlock",
    "compose",
    "parse_blocks",
]
