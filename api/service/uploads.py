"""Checkpoint archive uploads: a .tar.gz (or .zip) of a checkpoint directory, checked member by member and
written by hand (never ``extractall``) into ``<policy_dir>/uploads/<id>``, then registered like a path.

Accepted members: ``config.json`` and ``weights.safetensors``, either at the top or under one directory
(``ckpt/config.json``), plus that directory entry itself. Refused, with the reason in the 422: absolute names,
``..``, backslashes or NUL, symbolic and hard links, devices and FIFOs, any other name, duplicates, more than
``upload_max_members`` members, more than ``upload_max_uncompressed`` bytes uncompressed, a missing file,
``config.json`` that is not a JSON object, network shapes out of bounds, actor-critic checkpoints (not served).
Nothing is unpickled: the checkpoint is JSON + safetensors and loads through ``Engine.load``.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath

from api.service.errors import ApiError
from api.service.jobs import JobSettings

NAMES = ("config.json", "weights.safetensors")
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def _bad(message: str, code: str = "invalid_archive") -> ApiError:
    return ApiError(422, code, message, "file")


def _name(raw: str) -> str:
    """The member's file name (``config.json`` / ``weights.safetensors``) or '' for the one allowed directory;
    anything else is refused."""
    if "\x00" in raw or "\\" in raw:
        raise _bad(f"member {raw[:100]!r}: NUL or backslash in the name")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise _bad(f"member {raw[:100]!r}: absolute path")
    parts = [p for p in PurePosixPath(raw).parts if p != "."]
    if ".." in parts:
        raise _bad(f"member {raw[:100]!r}: '..' (path traversal)")
    if len(parts) > 2 or (len(parts) == 2 and parts[0].startswith(".")):
        raise _bad(
            f"member {raw[:100]!r}: unexpected path (expected config.json and weights.safetensors, "
            "at the top or in one directory)"
        )
    if not parts:
        return ""
    return parts[-1] if parts[-1] in NAMES else ("" if len(parts) == 1 else _unexpected(raw))


def _unexpected(raw: str) -> str:
    raise _bad(f"member {raw[:100]!r}: unexpected file (only config.json and weights.safetensors)")


def read_archive(data: bytes, limits: JobSettings) -> dict[str, bytes]:
    """``{"config.json": ..., "weights.safetensors": ...}`` from a .tar.gz / .tar / .zip, or 422 naming why."""
    if len(data) > limits.upload_max_bytes:
        raise ApiError(413, "too_large", f"archive exceeds {limits.upload_max_bytes} bytes", "file")
    if not data:
        raise _bad("empty upload")
    files = _read_zip(data, limits) if data[:4] == b"PK\x03\x04" else _read_tar(data, limits)
    for name in NAMES:
        if name not in files:
            raise _bad(f"the archive has no {name}", "invalid_checkpoint")
    return files


def _take(files: dict[str, bytes], dirs: set[str], name: str, raw: str, top: str) -> None:
    if name in files:
        raise _bad(f"member {raw[:100]!r}: {name} appears twice")
    parts = [p for p in PurePosixPath(raw).parts if p != "."]
    dirs.add(parts[0] if len(parts) == 2 else top)


def _read_tar(data: bytes, limits: JobSettings) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    total = count = 0
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise _bad(f"not a .tar.gz, .tar or .zip archive ({type(exc).__name__})") from exc
    try:
        while True:
            try:
                member = tar.next()
            except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
                raise _bad(f"corrupt archive ({type(exc).__name__}: {str(exc)[:200]})") from exc
            if member is None:
                break
            count += 1
            if count > limits.upload_max_members:
                raise _bad(f"more than {limits.upload_max_members} members")
            raw = member.name
            if member.issym() or member.islnk():
                raise _bad(f"member {raw[:100]!r}: links are not accepted (symlink or hard link)")
            if not (member.isfile() or member.isdir()):
                raise _bad(f"member {raw[:100]!r}: not a regular file or directory")
            name = _name(raw)
            if member.isdir():
                if name:
                    raise _bad(f"member {raw[:100]!r}: a directory with a checkpoint file's name")
                continue
            if not name:
                raise _bad(f"member {raw[:100]!r}: unexpected file (only config.json and weights.safetensors)")
            total += member.size
            if total > limits.upload_max_uncompressed:
                raise _bad(f"more than {limits.upload_max_uncompressed} bytes uncompressed")
            _take(files, dirs, name, raw, "")
            f = tar.extractfile(member)
            try:
                content = f.read(member.size + 1) if f is not None else b""
            except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
                raise _bad(f"corrupt archive ({type(exc).__name__})") from exc
            if len(content) != member.size:
                raise _bad(f"member {raw[:100]!r}: truncated")
            files[name] = content
    finally:
        tar.close()
    if len(dirs) > 1:
        raise _bad("the checkpoint files are in different directories")
    return files


def _read_zip(data: bytes, limits: JobSettings) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _bad(f"not a valid zip archive ({type(exc).__name__})") from exc
    if len(infos) > limits.upload_max_members:
        raise _bad(f"more than {limits.upload_max_members} members")
    if sum(i.file_size for i in infos) > limits.upload_max_uncompressed:
        raise _bad(f"more than {limits.upload_max_uncompressed} bytes uncompressed")
    for info in infos:
        raw = info.filename
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            raise _bad(f"member {raw[:100]!r}: links are not accepted (symlink)")
        if mode not in (0, 0o100000, 0o040000):
            raise _bad(f"member {raw[:100]!r}: not a regular file or directory")
        name = _name(raw)
        if info.is_dir():
            if name:
                raise _bad(f"member {raw[:100]!r}: a directory with a checkpoint file's name")
            continue
        if not name:
            raise _bad(f"member {raw[:100]!r}: unexpected file (only config.json and weights.safetensors)")
        _take(files, dirs, name, raw, "")
        try:
            with archive.open(info) as f:
                content = f.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise _bad(f"corrupt archive ({type(exc).__name__})") from exc
        if len(content) != info.file_size:
            raise _bad(f"member {raw[:100]!r}: size does not match its header")
        files[name] = content
    if len(dirs) > 1:
        raise _bad("the checkpoint files are in different directories")
    return files


def check_config(raw: bytes) -> dict:
    """``config.json`` parsed and checked before anything is built from it (bounded network shape)."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise _bad(f"config.json exceeds {MAX_CONFIG_BYTES} bytes", "invalid_checkpoint")
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _bad(f"config.json is not JSON: {str(exc)[:200]}", "invalid_checkpoint") from exc
    if not isinstance(meta, dict):
        raise _bad("config.json is not a JSON object", "invalid_checkpoint")
    if meta.get("kind") == "actor_critic":
        raise _bad("actor-critic checkpoints are not served over REST", "invalid_checkpoint")
    net = meta.get("network")
    ok = isinstance(net, dict)
    if isinstance(net, dict):
        dims = [net.get("n_actions"), net.get("state_dim"), net.get("context_dim", 0)]
        hidden = net.get("hidden")
        ok = (
            all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 100_000 for d in dims)
            and isinstance(hidden, list)
            and 1 <= len(hidden) <= 16
            and all(isinstance(w, int) and not isinstance(w, bool) and 1 <= w <= 8192 for w in hidden)
        )
    if not ok:
        raise _bad(
            "config.json: network must give n_actions, state_dim, context_dim and hidden (bounded integers)",
            "invalid_checkpoint",
        )
    if not isinstance(meta.get("scenario"), str) or not isinstance(meta.get("instance"), dict):
        raise _bad("config.json: scenario and instance are required", "invalid_checkpoint")
    return meta


def check_weights(raw: bytes) -> None:
    """The safetensors header is JSON of bounded size describing tensors that fit the file."""
    if len(raw) < 8:
        raise _bad("weights.safetensors is too short", "invalid_checkpoint")
    n = int.from_bytes(raw[:8], "little")
    if n > min(len(raw) - 8, 100 * 1024 * 1024):
        raise _bad("weights.safetensors: header larger than the file", "invalid_checkpoint")
    try:
        header = json.loads(raw[8 : 8 + n])
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(
            "weights.safetensors: the header is not JSON (not a safetensors file)", "invalid_checkpoint"
        ) from exc
    if not isinstance(header, dict):
        raise _bad("weights.safetensors: the header is not a JSON object", "invalid_checkpoint")


def store(files: dict[str, bytes], root: Path) -> tuple[str, bool]:
    """Write the checked files to ``<root>/uploads/<digest>`` (a temporary directory renamed into place): (the path
    relative to ``root``, whether it was written now). Content-addressed: the same archive lands in the same
    directory, so an upload repeated (or sent twice at once) is the one policy."""
    check_config(files["config.json"])
    check_weights(files["weights.safetensors"])
    uploads = root / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for fname in NAMES:
        digest.update(len(files[fname]).to_bytes(8, "little") + files[fname])
    name = digest.hexdigest()[:32]
    target = uploads / name
    if target.is_dir():
        return f"uploads/{name}", False
    tmp = uploads / f".{name}.{uuid.uuid4().hex}.tmp"
    tmp.mkdir()
    try:
        for fname in NAMES:
            (tmp / fname).write_bytes(files[fname])
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not target.is_dir():
            raise
        return f"uploads/{name}", False  # an identical upload landed first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return f"uploads/{name}", True


def upload(data: bytes, registry, limits: JobSettings) -> tuple[dict, bool]:
    """Check, store and register an archive: (policy info, created). The stored directory is removed when the
    checkpoint does not load."""
    files = read_archive(data, limits)
    relative, written = store(files, Path(registry.root))
    try:
        out = registry.register(relative)
    except ApiError as exc:
        if written:
            shutil.rmtree(Path(registry.root) / relative, ignore_errors=True)
        raise ApiError(exc.status, exc.code, exc.message, "file") from exc
    except BaseException:
        if written:
            shutil.rmtree(Path(registry.root) / relative, ignore_errors=True)
        raise
    return (out[0], out[1]) if isinstance(out, tuple) else (out, True)
