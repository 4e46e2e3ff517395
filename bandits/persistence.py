"""Versioned state files: a directory holding ``state.json`` (metadata, config, counters, RNG state) and
``arrays.npz`` (numeric state). Nothing is pickled; arrays load with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.errors import InvalidInputError

FORMAT_VERSION = 1
STATE_FILE = "state.json"
ARRAYS_FILE = "arrays.npz"


def save_state(path: str | Path, kind: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``meta`` (JSON-able) and ``arrays`` under directory ``path``; returns the directory."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise InvalidInputError(f"arrays.{name}", "object arrays cannot be saved without pickle")
    doc = {"format": "redwood.bandits", "version": FORMAT_VERSION, "kind": kind, "meta": meta}
    (out / STATE_FILE).write_text(json.dumps(doc, indent=1, sort_keys=True))
    # numpy's stub types savez's **arrays as if a key could be its ``allow_pickle`` flag (a typing gap; passing
    # allow_pickle here would store an array of that name on numpy < 2.1)
    np.savez(out / ARRAYS_FILE, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return out


def load_state(path: str | Path, kind: str | None = None) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    """Read a directory written by :func:`save_state`; checks format, version and (optionally) kind."""
    src = Path(path)
    try:
        doc = json.loads((src / STATE_FILE).read_text())
    except FileNotFoundError as exc:
        raise InvalidInputError("path", f"no {STATE_FILE} in {src}") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInputError("path", f"{STATE_FILE} is not valid JSON ({exc})") from exc
    if doc.get("format") != "redwood.bandits":
        raise InvalidInputError("format", f"not a bandit state file: {doc.get('format')!r}")
    if doc.get("version") != FORMAT_VERSION:
        raise InvalidInputError("version", f"unsupported version {doc.get('version')!r}; expected {FORMAT_VERSION}")
    if kind is not None and doc.get("kind") != kind:
        raise InvalidInputError("kind", f"state holds {doc.get('kind')!r}, expected {kind!r}")
    with np.load(src / ARRAYS_FILE, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return doc["kind"], doc["meta"], arrays


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """The generator's bit-generator state as plain JSON data (PCG64 only)."""
    state = rng.bit_generator.state
    if state.get("bit_generator") != "PCG64":
        raise InvalidInputError("seed", "only numpy's default PCG64 generator can be saved")
    return json.loads(json.dumps(state))


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    rng = np.random.Generator(np.random.PCG64())
    rng.bit_generator.state = state
    return rng


def make_rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A PCG64 generator from an int seed (or a copy-free pass-through of a Generator)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise InvalidInputError("seed", "an explicit integer seed is required")
    if int(seed) != seed or seed < 0:
        raise InvalidInputError("seed", f"expected a non-negative integer, got {seed!r}")
    return np.random.default_rng(int(seed))
