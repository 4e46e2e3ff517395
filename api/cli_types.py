"""Value types of the ``redwood`` arguments: each raises :class:`argparse.ArgumentTypeError` with the reason,
which the parser reports as ``argument <name>: <reason>``."""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable
from pathlib import Path


def int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def hidden_widths(text: str) -> tuple[int, ...]:
    parts = [w.strip() for w in text.split(",")]
    if not all(re.fullmatch("[0-9]+", p) and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers (layer widths), got {text!r}")
    return tuple(int(p) for p in parts)


def state(text: str) -> list[int]:
    """``s_1,...,s_J,time_to_go`` or a JSON list of integers; the engine checks the length and ranges."""
    if text.strip().startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"invalid JSON list ({exc.msg} at character {exc.pos})") from None
        if not isinstance(values, list):
            raise argparse.ArgumentTypeError("expected a JSON list of integers")
        entries = [(v, json.dumps(v)) for v in values]
    else:
        entries = [(v.strip(), repr(v.strip())) for v in text.split(",")]
    out = []
    for i, (value, shown) in enumerate(entries, start=1):
        if isinstance(value, str) and re.fullmatch("[+-]?[0-9]+", value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise argparse.ArgumentTypeError(f"entry {i} is {shown}, expected an integer")
        out.append(value)
    if not out:
        raise argparse.ArgumentTypeError("expected at least one entry")
    return out


def existing_file(text: str) -> str:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"not a file: {text!r}")
    return text


def existing_dir(text: str) -> str:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such directory: {text!r}")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"not a directory: {text!r}")
    return text


def output_file(text: str) -> str:
    """A file to write: its directory must exist and the path must not be a directory (checked before the
    work, not after it)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"is a directory, expected a file path: {text!r}")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"directory {str(path.parent)!r} does not exist")
    return text


def output_dir(text: str) -> str:
    """A directory to create or fill: it must not be an existing file, and its parent must exist or be creatable."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"exists and is not a directory: {text!r}")
    existing = next((p for p in path.absolute().parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{str(existing)!r} is not a directory")
    return text
