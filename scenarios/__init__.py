"""Problem instances as gymnasium environments with their feasible sets.

env = make("capacity", n_arms=20, budget=5, seed=0)
env = make("capacity", instance=json.load(open("instance.json")))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from scenarios.action_model import ActionModel
from scenarios.errors import InfeasibleActionError, InvalidInputError
from scenarios.registry import available, resolve
from scenarios.validation import parse_model

if TYPE_CHECKING:
    from engine.protocols import ScenarioInstance

__all__ = [
    "ActionModel",
    "InfeasibleActionError",
    "InvalidInputError",
    "instance_class",
    "list_scenarios",
    "make",
]


def list_scenarios() -> list[str]:
    """Names accepted by :func:`make`."""
    return available()


def instance_class(name: str) -> type[ScenarioInstance]:
    if name not in available():
        raise InvalidInputError("scenario", f"unknown scenario {name!r}; known: {', '.join(list_scenarios())}")
    return resolve(name)


def load_instance(name: str, instance: object) -> ScenarioInstance:
    """Validate a dict, JSON string or model into the scenario's instance, naming the bad field on error."""
    cls = instance_class(name)
    if not issubclass(cls, BaseModel):
        raise TypeError(f"scenario {name!r}: its instance class {cls.__name__} is not a pydantic model")
    return parse_model(cls, instance, "instance")


def make(name: str, instance: object = None, training: bool = False, **params):
    """Build the environment of scenario ``name`` from an ``instance`` (dict/JSON/model) or generator params."""
    cls = instance_class(name)
    if instance is None:
        try:
            instance = cls.generate(**params)
        except TypeError as exc:
            raise InvalidInputError("params", str(exc)) from exc
        except ValueError as exc:
            field, _, reason = str(exc).partition(": ")
            raise InvalidInputError(field if reason else "params", reason or str(exc)) from exc
    elif params:
        raise InvalidInputError("params", "give either an instance or generator parameters, not both")
    return load_instance(name, instance).make_env(training=training)
