"""Combinatorial oracles: the best feasible subset for per-arm weights, each reporting exactness."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandits.combinatorial.oracles.base import Oracle, OracleResult
from bandits.combinatorial.oracles.knapsack import KnapsackOracle
from bandits.combinatorial.oracles.matching import MatchingOracle
from bandits.combinatorial.oracles.milp import ActionModelOracle
from bandits.combinatorial.oracles.top_k import TopKOracle
from scenarios.errors import InvalidInputError

ORACLES: dict[str, type[Oracle]] = {
    cls.kind: cls for cls in (TopKOracle, KnapsackOracle, MatchingOracle, ActionModelOracle)
}


def oracle_from_state(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Oracle:
    kind = meta.get("kind")
    if kind not in ORACLES:
        raise InvalidInputError("oracle.kind", f"unknown oracle {kind!r}; known: {', '.join(ORACLES)}")
    return ORACLES[kind].from_state(meta, arrays)


__all__ = [
    "ORACLES",
    "ActionModelOracle",
    "KnapsackOracle",
    "MatchingOracle",
    "Oracle",
    "OracleResult",
    "TopKOracle",
    "oracle_from_state",
]
