"""``base_arms`` in place of ``arms``: families whose arms are augmented base arms (switching costs, pull limits)
accept the base arms and build the augmented ones when the instance is validated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scenarios.arms import Arms
from scenarios.errors import InvalidInputError


def arms_from_base(data: Any, what: str, build: Callable[[Arms, dict], Arms | None]) -> Any:
    """For a ``mode="before"`` validator: ``data`` with its ``base_arms`` replaced by ``build(base, data)`` as
    ``arms`` (``build`` reads the family's fields with :func:`required`, which names a malformed one).
    Errors name ``base_arms``; ``what`` names the augmented arms in the message."""
    if not isinstance(data, dict) or "base_arms" not in data:
        return data
    data = dict(data)
    if "arms" in data:
        raise ValueError(f"base_arms: give either arms ({what}) or base_arms, not both")
    try:
        base = Arms.parse(data.pop("base_arms"))
    except InvalidInputError as exc:
        raise ValueError(f"base_arms{exc.field.removeprefix('arms')}: {exc.reason}") from exc
    try:
        arms = build(base, data)
    except ValueError as exc:
        field, _, reason = str(exc).partition(": ")
        raise ValueError(f"base_arms: {reason}" if field == "arms" else str(exc)) from exc
    if arms is not None:
        data["arms"] = arms
    return data


def required(fields: dict, name: str, ok: Callable[[Any], bool], expected: str, default: Any = None) -> Any:
    """The family field ``name`` that building from ``base_arms`` needs, or ``ValueError("name: reason")`` (so the
    error names that field, not the ``arms`` it could not build)."""
    if name not in fields and default is None:
        raise ValueError(f"{name}: required with base_arms ({expected})")
    value = fields.get(name, default)
    if not ok(value):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return value
