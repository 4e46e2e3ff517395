"""Constraint rows over [a ; y] assembled block by block, then one ActionModel with binary auxiliary columns.

The time-expanded walks (closed and open) and the scheduling block each build their rows as a few sparse
blocks (COO triplets, lower and upper bounds, a label per row); this gathers them once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from scenarios.action_model import ActionModel


class RowStack:
    """Rows over ``n_actions`` action columns followed by ``n_aux`` binary auxiliary columns."""

    def __init__(self, n_actions: int, n_aux: int) -> None:
        self.n_actions, self.n_aux = int(n_actions), int(n_aux)
        self.blocks: list[sp.csr_matrix] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.names: list[str] = []

    def add(self, rows, cols, vals, n_rows: int, lower, upper, labels: list[str]) -> None:
        """``n_rows`` rows with entries ``vals`` at (``rows``, ``cols``), bounds broadcast over them, and labels."""
        shape = (n_rows, self.n_actions + self.n_aux)
        self.blocks.append(sp.csr_matrix((vals, (rows, cols)), shape=shape))
        self.lower.append(np.broadcast_to(np.asarray(lower, float), (n_rows,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, float), (n_rows,)))
        self.names.extend(labels)

    def model(self, name: str, aux_names: list[str], **fields: Any) -> ActionModel:
        """The ActionModel of these rows (auxiliary columns binary); ``fields`` are its other fields."""
        return ActionModel(
            name=name,
            n_actions=self.n_actions,
            A=sp.vstack(self.blocks, format="csr"),
            row_lower=np.concatenate(self.lower),
            row_upper=np.concatenate(self.upper),
            row_names=self.names,
            aux_lower=np.zeros(self.n_aux),
            aux_upper=np.ones(self.n_aux),
            aux_integer=np.ones(self.n_aux, bool),
            aux_names=aux_names,
            **fields,
        )
