"""Validation of :class:`scenarios.arms.Arms`: shapes per arm (ragged state counts), probabilities, rewards,
costs and initial distributions, each error naming its element (``transitions[3][1][2]: row sums to 0.8``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scenarios.arms import Arms

_TOL = 1e-6  # rows must sum to one within this
_NEG = 1e-12  # rounding: probabilities down to -1e-12 are accepted as 0


def validate_arms(arms: Arms) -> None:
    """Raise ``ValueError("<field path>: reason")`` on the first problem."""
    T = arms.transitions
    N = len(T)
    if N < 1:
        raise ValueError("transitions: at least one arm is required")
    A = len(T[0])
    if A < 2:
        raise ValueError("transitions[0]: at least two actions (passive and one level) are required")
    counts = []
    for j, arm in enumerate(T):
        if len(arm) != A:
            raise ValueError(f"transitions[{j}]: expected {A} actions (as arm 0), got {len(arm)}")
        S = len(arm[0])
        if S < 2:
            raise ValueError(f"transitions[{j}][0]: at least two states are required, got {S}")
        counts.append(S)
    P = ragged(T, counts, "transitions", lambda S: (A, S, S))
    if len(set(counts)) == 1:  # one check over every arm; the loop below then names the first bad one
        whole = np.asarray(P)
        if np.all(np.isfinite(whole)) and np.all(whole >= -_NEG) and np.all(np.abs(whole.sum(-1) - 1) <= _TOL):
            P = []
    for j, Pj in enumerate(P):
        bad = np.argwhere(~np.isfinite(Pj) | (Pj < -_NEG))
        if len(bad):
            a, s, t = bad[0]
            raise ValueError(f"transitions[{j}][{a}][{s}][{t}]: probabilities must be finite and >= 0")
        sums = Pj.sum(-1)
        bad = np.argwhere(np.abs(sums - 1) > _TOL)
        if len(bad):
            a, s = bad[0]
            raise ValueError(f"transitions[{j}][{a}][{s}]: row sums to {sums[a, s]:.6g}, not 1")
    if (arms.arrival_rewards is None) == (arms.rewards is None):
        raise ValueError("rewards: give exactly one of arrival_rewards (r(s')) and rewards (r(s, a))")
    if arms.arrival_rewards is not None:
        finite(ragged(arms.arrival_rewards, counts, "arrival_rewards", lambda S: (S,)), "arrival_rewards")
    elif arms.rewards is not None:
        finite(ragged(arms.rewards, counts, "rewards", lambda S: (S, A)), "rewards")
    if arms.costs is not None:
        C = np.asarray(ragged(arms.costs, [A] * N, "costs", lambda n: (n,)))
        finite(list(C), "costs")
        wrong = np.flatnonzero((np.diff(C, axis=1) <= 0).any(1) | (C < 0).any(1))
        if len(wrong):
            raise ValueError(f"costs[{wrong[0]}]: must be non-negative and strictly increasing in the action")
    if arms.available is not None:
        for j, table in enumerate(ragged(arms.available, counts, "available", lambda S: (S, A))):
            passive = np.flatnonzero(~table[:, 0].astype(bool))
            if len(passive):
                reason = "the passive action must be available in every state"
                raise ValueError(f"available[{j}][{passive[0]}][0]: {reason}")
    for name in ("initial", "train_initial"):
        rows = getattr(arms, name)
        if rows is None:
            continue
        arrays = ragged(rows, counts, name, lambda S: (S,))
        if len(set(counts)) == 1:  # one check over every arm; the loop then names the first bad one
            whole = np.asarray(arrays)
            if np.all(np.isfinite(whole)) and np.all(whole >= -_NEG) and np.all(np.abs(whole.sum(-1) - 1) <= _TOL):
                continue
        for j, row in enumerate(arrays):
            if not np.all(np.isfinite(row)) or np.any(row < -_NEG) or abs(row.sum() - 1) > _TOL:
                raise ValueError(f"{name}[{j}]: must be a probability distribution (sums to {row.sum():.6g})")


def ragged(rows: list, counts: list[int], name: str, shape) -> list[np.ndarray]:
    """One array per arm of the expected shape; names the first arm that does not fit."""
    if len(rows) != len(counts):
        raise ValueError(f"{name}: expected {len(counts)} entries (one per arm), got {len(rows)}")
    if len(set(counts)) == 1:  # common state count: one conversion when the input is rectangular
        try:
            whole = np.asarray(rows, dtype=float)
        except ValueError:
            whole = np.zeros(0)
        if whole.shape == (len(counts), *shape(counts[0])):
            return list(whole)
    out = []
    for j, (row, S) in enumerate(zip(rows, counts, strict=True)):
        try:
            arr = np.asarray(row, dtype=float)
        except ValueError:
            arr = np.zeros(0)
        if arr.shape != shape(S):
            raise ValueError(f"{name}[{j}]: expected shape {shape(S)} (arm {j} has {S} states), got {arr.shape}")
        out.append(arr)
    return out


def finite(arrays: list[np.ndarray], name: str) -> None:
    for j, arr in enumerate(arrays):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}[{j}]: NaN or infinity")


# ---------------------------------------------------------------------------------------- birth-death arms
