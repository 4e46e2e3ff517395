"""Resolve a user-supplied checkpoint path inside the policy directory; nothing outside it is reachable."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from api.service.errors import ApiError

CHECKPOINT_FILES = ("config.json", "weights.safetensors")


def _reject(reason: str) -> ApiError:
    return ApiError(422, "invalid_path", reason, "path")


def resolve_checkpoint(root: Path, relative: str) -> Path:
    """See :func:`_resolve`; file-system errors (names too long, loops, permissions) are bad input."""
    try:
        return _resolve(root, relative)
    except OSError as exc:
        raise _reject(f"unusable path ({exc.strerror or type(exc).__name__})") from exc


def canonical_path(root: Path, target: Path) -> str:
    """The resolved checkpoint directory ``target`` as a normalised POSIX path relative to ``root`` ("." for
    the policy directory itself): one spelling per directory, so ``p``, ``p/``, ``./p`` and ``p/.`` (or a
    symlink to ``p`` inside the policy directory) all name the same checkpoint."""
    rel = target.relative_to(root.resolve(strict=True)).as_posix()
    return rel or "."


def _resolve(root: Path, relative: str) -> Path:
    """The checkpoint directory ``root/relative``: relative, no '..', no escaping symlink (the directory or its
    files), and holding ``config.json`` + ``weights.safetensors``."""
    if not relative or "\x00" in relative or "\\" in relative:
        raise _reject("expected a relative POSIX path without NUL or backslash")
    rel = PurePosixPath(relative)  # drops "." components and trailing slashes: "./p/." is "p", "." has no parts
    if rel.is_absolute() or relative.startswith("~") or any(":" in part for part in rel.parts[:1]):
        raise _reject("absolute paths are not accepted; give a path relative to the policy directory")
    if any(part == ".." for part in rel.parts):
        raise _reject("'..' is not allowed in policy paths")
    try:
        base = root.resolve(strict=True)
    except OSError as exc:
        raise ApiError(404, "not_found", "the server's policy directory does not exist", "path") from exc
    target = (base / rel).resolve(strict=False)
    if not target.is_relative_to(base):
        raise _reject("the path leaves the policy directory (symlink)")
    if not target.is_dir():
        raise ApiError(404, "not_found", f"no checkpoint directory {relative!r} in the policy directory", "path")
    for name in CHECKPOINT_FILES:
        f = target / name
        if not f.is_file():
            raise ApiError(422, "invalid_checkpoint", f"{relative!r} has no {name}", "path")
        if not f.resolve().is_relative_to(base):
            raise _reject(f"{name} links outside the policy directory")
    return target
