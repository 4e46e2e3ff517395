"""What a domain's feasible-set rows encode (:class:`Structure`), bound to exactly those rows by a fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from scenarios.action_model import ActionModel


@dataclass(frozen=True)
class Structure:
    """The combinatorial structure a domain's rows encode: ``kind`` (``budget``, ``capacity``, ``scheduling``,
    ``routing``) and its data ``params`` (plain lists and numbers). ``rows_digest`` is filled in by the
    :class:`ActionModel` it is attached to and ties the structure to exactly those rows."""

    kind: str
    params: Mapping[str, Any]
    rows_digest: str = ""


def rows_digest(model: ActionModel) -> str:
    """A fingerprint of the rows, bounds and integrality that define the feasible set."""
    digest = hashlib.sha256(repr((model.n_actions, model.A.shape)).encode())
    A = model.A
    for arr in (A.indptr, A.indices, A.data, model.row_lower, model.row_upper, model.aux_lower, model.aux_upper):
        digest.update(np.ascontiguousarray(arr, dtype=float).tobytes())
    digest.update(np.ascontiguousarray(model.aux_integer, dtype=bool).tobytes())
    return digest.hexdigest()
