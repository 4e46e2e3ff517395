"""Input validation helpers shared by scenarios, the engine and the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

from scenarios.errors import InvalidInputError

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


def as_int_vector(value: object, field: str, length: int, low: int, high: int) -> np.ndarray:
    """Return ``value`` as an int64 vector of ``length`` entries in ``[low, high]`` or raise naming ``field``."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and other objects numpy cannot shape
        raise InvalidInputError(field, f"cannot be read as a vector ({exc})") from exc
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise InvalidInputError(field, f"expected shape ({length},), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise InvalidInputError(field, f"expected numbers, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(field, "contains NaN or infinity")
    if np.any(arr != np.round(arr)):
        raise InvalidInputError(field, "expected integers")
    out = arr.astype(np.int64)
    bad = np.flatnonzero((out < low) | (out > high))
    if bad.size:
        raise InvalidInputError(field, f"entry {int(bad[0])} = {int(out[bad[0]])} is outside [{low}, {high}]")
    return out


def parse_model(cls: type[M], data: object, root: str) -> M:
    """Validate a dict, JSON text or model into pydantic ``cls``; errors become ``InvalidInputError`` naming
    the field as ``root.<location>`` (extended by the field of a ``"field: reason"`` message from a model's own
    check)."""
    import pydantic

    try:
        if isinstance(data, cls):
            return data
        if isinstance(data, str | bytes):
            return cls.model_validate_json(data)
        return cls.model_validate(data)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        field, sep, reason = msg.partition(": ")
        if sep and field and " " not in field and (not loc or err["type"] == "value_error"):
            # a model's own check names the element ("transitions[2][1][0]: row sums to 0.8"): extend the location
            loc, msg = f"{loc}.{field}" if loc else field, reason
        raise InvalidInputError(f"{root}.{loc}" if loc else root, msg) from exc
