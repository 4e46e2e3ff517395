"""Scenario registry: a new scenario is one new file plus one line here.

Entries are import paths so that a scenario's dependencies load only when it is used.
"""

from __future__ import annotations

import importlib
import importlib.util

SCENARIOS: dict[str, str] = {
    "capacity": "scenarios.capacity:CapacityInstance",
    "scheduling": "scenarios.scheduling:SchedulingInstance",
    "routing": "scenarios.routing:RoutingInstance",
    "multi_intervention": "scenarios.multi_intervention:MultiInterventionInstance",
    "inventory": "scenarios.inventory:InventoryInstance",
    "maze": "scenarios.maze:MazeInstance",
    "overlapping_reach": "scenarios.overlapping_reach:OverlappingReachInstance",
    "coverage": "scenarios.coverage:CoverageInstance",
}


def available() -> list[str]:
    """Registered names whose module is present."""
    return sorted(name for name in SCENARIOS if importlib.util.find_spec(SCENARIOS[name].split(":")[0]))


def resolve(name: str) -> type:
    module, _, attr = SCENARIOS[name].partition(":")
    return getattr(importlib.import_module(module), attr)
