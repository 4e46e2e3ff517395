"""Input checks shared by the bandit modules; every failure raises ``InvalidInputError(field, reason)``."""

from __future__ import annotations

import numpy as np

from scenarios.errors import InvalidInputError


def as_float_array(value: object, field: str, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """``value`` as a finite float64 array; ``shape`` entries that are None match any length."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(field, f"cannot be read as an array of numbers ({exc})") from exc
    if shape is not None and (
        arr.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, arr.shape, strict=True))
    ):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise InvalidInputError(field, f"expected shape {want}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(field, "contains NaN or infinity")
    return arr


def as_index_array(value: object, field: str, high: int, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """``value`` as an int64 array with entries in ``[0, high)``."""
    arr = as_float_array(value, field, shape)
    if np.any(arr != np.round(arr)):
        raise InvalidInputError(field, "expected integers")
    out = arr.astype(np.int64)
    bad = np.flatnonzero((out < 0) | (out >= high))
    if bad.size:
        raise InvalidInputError(field, f"entry {int(bad[0])} = {int(out.flat[bad[0]])} is outside [0, {high - 1}]")
    return out


def check_positive(value: float, field: str, allow_zero: bool = False) -> float:
    """A finite positive (or non-negative) number."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(field, "expected a number") from exc
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InvalidInputError(field, f"expected a {'non-negative' if allow_zero else 'positive'} number, got {v}")
    return v


def check_discount(discount: float, horizon: int | None) -> tuple[float, int | None]:
    """Discount in (0, 1] and horizon >= 1; an infinite horizon (None) needs discount < 1."""
    d = check_positive(discount, "discount")
    if d > 1.0:
        raise InvalidInputError("discount", f"must lie in (0, 1], got {d}")
    if horizon is None:
        if d >= 1.0:
            raise InvalidInputError("discount", "an infinite horizon (horizon=None) needs discount < 1")
        return d, None
    if int(horizon) != horizon or horizon < 1:
        raise InvalidInputError("horizon", f"expected a positive integer or None, got {horizon!r}")
    return d, int(horizon)
