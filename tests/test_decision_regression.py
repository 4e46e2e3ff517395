"""Decisions are unchanged by refactors: stored checkpoints choose the stored actions on stored states.

The fixtures were written by ``python -m tests.regression.make_fixtures`` before the package layout moved;
every scenario, every DQN selector, every planner and the actor-critic selectors are covered.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import Engine
from scenarios import make
from tests.regression.make_fixtures import CORMAB

FIXTURES = Path(__file__).resolve().parent / "regression" / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
CASES = [
    (name, family, method)
    for name, entry in EXPECTED.items()
    for family in ("dqn", "planners", "dnc")
    if family in entry
    for method in entry[family]
]


@pytest.mark.parametrize(("name", "family", "method"), CASES)
def test_decisions_match_the_stored_actions(name: str, family: str, method: str) -> None:
    entry = EXPECTED[name]
    if family == "planners":
        policy, selector = Engine.plan(make(name, seed=3, **CORMAB[name]), method), "mip"
    else:
        policy, selector = Engine.load(FIXTURES / f"{name}.pt"), method
    for state, want in zip(entry["states"], entry[family][method], strict=True):
        got = np.asarray(policy.decide(np.asarray(state), selector=selector).action).tolist()
        assert got == want, f"{name} {family}/{method} at state {state}"
