"""Logged restless-arm transitions: load a CSV, Parquet file or DataFrame, validate every row, count.

A log has one record per observed transition with integer columns ``arm, state, action, next_state``
(ids counted from 0; integral numbers such as ``2.0`` are accepted); other columns are ignored. Rows are
numbered from 1 in file order (row 1 is the first record, line 2 of a CSV with its header). A bad value
raises :class:`InvalidInputError` naming the row and column, e.g.
``log row 17, column 'next_state': expected an integer in [0, 2], got 'x'``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scenarios.errors import InvalidInputError

COLUMNS = ("arm", "state", "action", "next_state")
_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_MAX_COUNT_CELLS = 200_000_000  # a count array larger than this means ids are not consecutive from 0


@dataclass(frozen=True, eq=False)
class TransitionLog:
    """Validated transitions as int64 arrays, with the dimensions they index into."""

    arm: np.ndarray
    state: np.ndarray
    action: np.ndarray
    next_state: np.ndarray
    n_arms: int
    n_states: int
    n_actions: int

    def __post_init__(self) -> None:
        lengths = {len(np.asarray(getattr(self, name))) for name in COLUMNS}
        if len(lengths) != 1:
            raise InvalidInputError("log", f"columns have different lengths {sorted(lengths)}")
        for name, size in (("n_arms", self.n_arms), ("n_states", self.n_states), ("n_actions", self.n_actions)):
            if int(size) < 1:
                raise InvalidInputError(name, f"expected a positive integer, got {size}")
        for name in COLUMNS:
            values = np.asarray(getattr(self, name))
            if values.ndim != 1 or not (values.size == 0 or np.issubdtype(values.dtype, np.integer)):
                raise InvalidInputError(f"log column {name!r}", "expected a 1-D integer array")
            bad = _first_bad(values.astype(float), self._upper(name))
            if bad is not None:
                raise InvalidInputError(_where(bad, name), _expected(self._upper(name), values[bad]))
            object.__setattr__(self, name, values.astype(np.int64, copy=False))

    def _upper(self, column: str) -> int:
        return {"arm": self.n_arms, "action": self.n_actions}.get(column, self.n_states) - 1

    def __len__(self) -> int:
        return len(self.arm)

    def counts(self) -> np.ndarray:
        """Transition counts, shape (arms, actions, states, states), int64; one vectorised bincount."""
        A, S = self.n_actions, self.n_states
        cells = self.n_arms * A * S * S
        if cells > _MAX_COUNT_CELLS:
            raise InvalidInputError("log", f"{cells} count cells; arm, state and action ids must run from 0")
        flat = ((self.arm * A + self.action) * S + self.state) * S + self.next_state
        return np.bincount(flat, minlength=cells).reshape(self.n_arms, A, S, S)

    def with_dims(self, n_arms: int, n_states: int, n_actions: int) -> TransitionLog:
        """The same records indexed into (possibly larger) dimensions; values out of range are an error."""
        return TransitionLog(self.arm, self.state, self.action, self.next_state, n_arms, n_states, n_actions)

    def concat(self, other: TransitionLog) -> TransitionLog:
        """This log followed by ``other``, in the larger of the two logs' dimensions."""
        arm, state, action, next_state = (np.concatenate([getattr(self, c), getattr(other, c)]) for c in COLUMNS)
        n_arms, n_states, n_actions = (max(a, b) for a, b in zip(self._dims(), other._dims(), strict=True))
        return TransitionLog(arm, state, action, next_state, n_arms, n_states, n_actions)

    def _dims(self) -> tuple[int, int, int]:
        return self.n_arms, self.n_states, self.n_actions

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({name: getattr(self, name) for name in COLUMNS})

    def to_file(self, path: str | os.PathLike[str]) -> None:
        """Write a CSV or Parquet file, chosen by the suffix as in :func:`load_transition_log`."""
        kind = _file_kind(Path(path))
        frame = self.to_frame()
        if kind == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)


def load_transition_log(
    path_or_frame: str | os.PathLike[str] | pd.DataFrame,
    n_states: int | None = None,
    n_actions: int | None = None,
    n_arms: int | None = None,
) -> TransitionLog:
    """Read and validate a log; dimensions not given are inferred as the largest id + 1."""
    frame = path_or_frame if isinstance(path_or_frame, pd.DataFrame) else _read(Path(path_or_frame))
    missing = [name for name in COLUMNS if name not in frame.columns]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        found = ", ".join(repr(str(c)) for c in frame.columns) or "none"
        raise InvalidInputError(f"log column {names}", f"missing; the log has columns {found}")
    given = {"arm": n_arms, "state": n_states, "next_state": n_states, "action": n_actions}
    for name, size in (("n_arms", n_arms), ("n_states", n_states), ("n_actions", n_actions)):
        if size is not None and int(size) < 1:
            raise InvalidInputError(name, f"expected a positive integer, got {size}")
    if len(frame) == 0 and None in given.values():
        raise InvalidInputError("log", "no records; give n_arms, n_states and n_actions to accept an empty log")
    columns = _validated_columns(frame, {k: None if v is None else int(v) - 1 for k, v in given.items()})
    arm, state, action, next_state = (columns[c] for c in COLUMNS)
    return TransitionLog(
        arm,
        state,
        action,
        next_state,
        int(n_arms) if n_arms is not None else int(arm.max()) + 1,
        int(n_states) if n_states is not None else int(max(state.max(), next_state.max())) + 1,
        int(n_actions) if n_actions is not None else int(action.max()) + 1,
    )


def _read(path: Path) -> pd.DataFrame:
    kind = _file_kind(path)
    if not path.is_file():
        raise InvalidInputError("log", f"no such file: {path}")
    try:
        if kind == "csv":
            return pd.read_csv(path, usecols=lambda c: c in COLUMNS)
        present = [name for name in pq.read_schema(path).names if name in COLUMNS]
        return pd.read_parquet(path, columns=present)
    except pd.errors.EmptyDataError as exc:
        raise InvalidInputError("log", f"{path.name} is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, pa.ArrowException) as exc:
        raise InvalidInputError("log", f"cannot read {path.name}: {exc}") from exc


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise InvalidInputError("log", f"unsupported file type {path.name!r}; use .csv, .csv.gz, .parquet or .pq")


def _validated_columns(frame: pd.DataFrame, upper: dict[str, int | None]) -> dict[str, np.ndarray]:
    """Each column as int64; the first bad value in file order (then column order) raises."""
    out: dict[str, np.ndarray] = {}
    first: tuple[int, int, str] | None = None
    for order, name in enumerate(COLUMNS):
        series = frame[name]
        if pd.api.types.is_bool_dtype(series.dtype):
            numeric = np.full(len(series), np.nan)  # True/False are not ids
        else:
            numeric = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = _first_bad(numeric, upper[name])
        if bad is not None and (first is None or (bad, order) < first[:2]):
            first = (bad, order, name)
        out[name] = np.nan_to_num(numeric).astype(np.int64)
    if first is not None:
        row, _, name = first
        raise InvalidInputError(_where(row, name), _expected(upper[name], frame[name].iloc[row]))
    return out


def _first_bad(values: np.ndarray, upper: int | None) -> int | None:
    """Index of the first value that is not an integer in [0, upper] (upper None: no upper bound)."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(values) & (values == np.floor(values)) & (values >= 0)
        if upper is not None:
            ok &= values <= upper
    if ok.all():
        return None
    return int(np.argmin(ok))


def _where(index: int, column: str) -> str:
    return f"log row {index + 1}, column {column!r}"


def _expected(upper: int | None, raw: object) -> str:
    wanted = "a non-negative integer" if upper is None else f"an integer in [0, {upper}]"
    return f"expected {wanted}, got {_show(raw)}"


def _show(raw: object) -> str:
    if isinstance(raw, np.generic):
        raw = raw.item()
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or raw is pd.NA:
        return "an empty value"
    if isinstance(raw, str):
        try:
            float(raw)
        except ValueError:
            return repr(raw)
        return raw.strip()  # a number read as text shows as the number
    return repr(raw)
