"""Compose constraint blocks into one ActionModel: rows stacked, auxiliary variables concatenated.

Every block compiles to rows over ``[a ; its own auxiliaries]``; the composition's variables are ``[a ; y_1 ;
... ; y_K]``. Blocks that only share ``a`` are independent given ``a``: an action is feasible iff every block
accepts it, so their fast oracles combine (:class:`ComposedOracle`). A linear block whose terms name another
block's auxiliaries couples the blocks; that composition is answered by HiGHS over the rows.
A block with a label (the user's blocks: ``constraints[k]``) has its row and auxiliary names prefixed
``label:``, so violations name the block and the row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from scenarios.action_model import ActionModel
from scenarios.constraints.base import BlockBase, RowsOracle, greedy_sample
from scenarios.constraints.linear import LinearBlock
from scenarios.feasibility import QuickFeasibility


def _named(names: list[str], label: str | None) -> list[str]:
    return list(names) if label is None else [f"{label}:{n}" for n in names]


def compose(
    blocks: Sequence[BlockBase],
    n_actions: int,
    name: str = "composed",
    labels: Sequence[str | None] | None = None,
) -> ActionModel:
    """One ActionModel for ``blocks`` over ``n_actions`` entries; raises ``ValueError("label.field: reason")``
    (``blocks[k].field`` without labels) when a block does not fit."""
    labels = list(labels) if labels is not None else [None] * len(blocks)
    if len(labels) != len(blocks):
        raise ValueError("labels: one label (or None) per block is required")
    if not blocks:
        empty = ActionModel(
            name=name,
            n_actions=n_actions,
            A=sp.csr_matrix((0, n_actions)),
            row_lower=np.zeros(0),
            row_upper=np.zeros(0),
            row_names=[],
            aux_lower=np.zeros(0),
            aux_upper=np.zeros(0),
            aux_integer=np.zeros(0, bool),
        )
        empty.oracle = RowsOracle(empty.A, empty.row_lower, empty.row_upper, True, fallback=empty)
        return empty
    parts: list[ActionModel] = []
    for k, (block, label) in enumerate(zip(blocks, labels, strict=True)):
        try:
            parts.append(block.compile(n_actions))
        except ValueError as exc:
            raise ValueError(f"{label or f'blocks[{k}]'}.{exc}") from exc
    spans, start = [], 0
    for part in parts:
        spans.append((start, start + part.n_aux))
        start += part.n_aux
    if len(parts) == 1 and labels[0] is None:  # the block's own model: rows, oracle and caches unchanged
        return dataclasses.replace(parts[0], name=name, blocks=[blocks[0]], block_labels=[None], block_aux=spans)
    n_aux = start
    aux_names = [n for part, label in zip(parts, labels, strict=True) for n in _named(part.aux_names, label)]
    column = {n: n_actions + k for k, n in enumerate(aux_names)}
    stacked = []
    for k, (part, (lo, hi)) in enumerate(zip(parts, spans, strict=True)):
        A = part.A.tocsc()
        left = A[:, :n_actions]
        own = A[:, n_actions:]
        rows = sp.hstack(
            [left, sp.csr_matrix((part.A.shape[0], lo)), own, sp.csr_matrix((part.A.shape[0], n_aux - hi))],
            format="csr",
        )
        block = blocks[k]
        if isinstance(block, LinearBlock) and block.external_terms():
            extra_r, extra_c, extra_v = [], [], []
            for r, term, coef in block.external_terms():
                if term not in column:
                    raise ValueError(f"{labels[k] or f'blocks[{k}]'}.rows[{r}].terms: unknown variable {term!r}")
                extra_r.append(r)
                extra_c.append(column[term])
                extra_v.append(coef)
            rows = rows + sp.csr_matrix((extra_v, (extra_r, extra_c)), shape=rows.shape)
        stacked.append(rows)
    coupled = any(isinstance(b, LinearBlock) and b.external_names() for b in blocks)
    model = ActionModel(
        name=name,
        n_actions=n_actions,
        A=sp.vstack(stacked, format="csr"),
        row_lower=np.concatenate([p.row_lower for p in parts]).astype(float),
        row_upper=np.concatenate([p.row_upper for p in parts]).astype(float),
        row_names=[n for part, label in zip(parts, labels, strict=True) for n in _named(part.row_names, label)],
        aux_lower=np.concatenate([p.aux_lower for p in parts]).astype(float),
        aux_upper=np.concatenate([p.aux_upper for p in parts]).astype(float),
        aux_integer=np.concatenate([p.aux_integer for p in parts]).astype(bool),
        aux_names=aux_names,
        downward_closed=all(p.downward_closed for p in parts) and not coupled,
        blocks=list(blocks),
        block_labels=labels,
        block_aux=spans,
    )
    if not coupled and all(p.oracle is not None for p in parts):
        model.oracle = ComposedOracle(parts, spans, model)
    return model


class ComposedOracle:
    """Independent blocks: feasible iff every block's oracle accepts; certificates concatenated."""

    def __init__(self, parts: list[ActionModel], spans: list[tuple[int, int]], model: ActionModel, tries: int = 200):
        self.parts, self.spans, self.tries = parts, spans, tries
        self.n, self.n_aux = model.n_actions, model.n_aux
        self.closed = model.downward_closed
        self._fallback = dataclasses.replace(model, oracle=None, _cache={}, _solver=None)

    def is_feasible(self, a: np.ndarray) -> bool:
        return all(p.is_feasible(a) for p in self.parts)

    def quick_feasible(self, a: np.ndarray) -> bool | None:
        verdict: bool | None = True
        for p in self.parts:
            quick = p.oracle.quick_feasible if isinstance(p.oracle, QuickFeasibility) else None
            v = p.is_feasible(a) if quick is None else quick(a)
            if v is False:
                return False
            if v is None:
                verdict = None
        return verdict

    def certificate(self, a: np.ndarray) -> np.ndarray | None:
        out = np.zeros(self.n_aux)
        for p, (lo, hi) in zip(self.parts, self.spans, strict=True):
            y = p.certificate(a)
            if y is None:
                return None
            out[lo:hi] = y
        return out

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Downward closed: entries in random order, each kept while feasible (a random maximal action).
        Otherwise samples of the first block that is not downward closed, rejected until every block accepts,
        then a MILP with a random objective."""
        if self.closed:
            return greedy_sample(self.n, self.is_feasible, rng)
        source = next(p for p in self.parts if not p.downward_closed)
        for _ in range(self.tries):
            a = np.asarray(source.sample(rng), dtype=np.int64)
            if self.is_feasible(a):
                return a
        return self._fallback.sample(rng)
