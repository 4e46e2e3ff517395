"""Choices of the ``redwood`` command line that live in registries (scenarios, selectors, methods, planners,
domains, executors), read lazily: listing them in ``--help`` or checking an argument imports the registry
that holds them only then, and scenario names come from ``scenarios/registry.py`` without importing the
``scenarios`` package."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType


class LazyChoices(Sequence):
    """Choices loaded on first use (a membership test or the help text), so that building the parser does
    not import the registry that holds them."""

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        self._names: list[str] | None = None

    def names(self) -> list[str]:
        if self._names is None:
            self._names = list(self._load())
        return self._names

    def __getitem__(self, index):
        return self.names()[index]

    def __len__(self) -> int:
        return len(self.names())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, value: object) -> bool:
        return value in self.names()


# --------------------------------------------------------------------------------------------- registries
def scenario_registry() -> ModuleType:
    """``scenarios.registry``; when the ``scenarios`` package is not imported yet, the registry file is
    executed on its own (it imports nothing heavy, while the package's ``__init__`` pulls numpy and scipy)."""
    if "scenarios" in sys.modules:
        import scenarios.registry

        return scenarios.registry
    module = sys.modules.get("_redwood_scenario_registry")
    if module is None:
        package = importlib.util.find_spec("scenarios")  # locates the top-level package without importing it
        assert package is not None and package.submodule_search_locations, "the scenarios package is missing"
        path = Path(next(iter(package.submodule_search_locations))) / "registry.py"
        spec = importlib.util.spec_from_file_location("_redwood_scenario_registry", path)
        assert spec is not None and spec.loader is not None, f"cannot load {path}"
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["_redwood_scenario_registry"] = module
    return module


def scenario_names() -> list[str]:
    return scenario_registry().available()


def selector_names() -> list[str]:
    from engine.policy_kinds import selector_names

    return selector_names()


def method_names() -> list[str]:
    from engine.analysis.evaluation import method_names

    return method_names()


def planner_names() -> list[str]:
    from engine.planners import PLANNERS

    return list(PLANNERS)


def domain_names() -> list[str]:
    from engine.experiments.sweep import DOMAINS

    return list(DOMAINS)


def executor_names() -> list[str]:
    from engine.experiments.executors import EXECUTORS

    return list(EXECUTORS)


SCENARIOS = LazyChoices(scenario_names)
SELECTORS = LazyChoices(selector_names)
EXECUTORS = LazyChoices(executor_names)
METHODS = LazyChoices(method_names)
PLANNERS = LazyChoices(planner_names)
DOMAINS = LazyChoices(domain_names)
