"""POST /v1/policies:upload: a checkpoint archive registers and decides; hostile or broken archives are refused
with a 4xx naming the reason, and nothing is written outside the policy directory's uploads/ folder."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}


def _files(policy_dir: Path) -> dict[str, bytes]:
    return {name: (policy_dir / "cap10" / name).read_bytes() for name in ("config.json", "weights.safetensors")}


def _tar(members: list[tuple[str, bytes | None, bytes]], gz: bool = True) -> bytes:
    """``(name, content or None, type)`` members; type is a tarfile type flag."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tar:
        for name, content, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = "/etc/passwd"
                tar.addfile(info)
            elif content is None:  # a directory, FIFO, ...
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _good(policy_dir: Path, prefix: str = "") -> list[tuple[str, bytes, bytes]]:
    return [(prefix + name, content, tarfile.REGTYPE) for name, content in _files(policy_dir).items()]


@pytest.fixture
def client(app_factory, tmp_path):
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        yield c


def _multipart(c: TestClient, data: bytes, name: str = "ckpt.tar.gz", headers=H):
    return c.post("/v1/policies:upload", headers=headers, files={"file": (name, data, "application/gzip")})


def test_good_archives_register_and_decide(client, policy_dir):
    c = client
    r = _multipart(c, _tar([*_good(policy_dir, "cap10/"), ("cap10", None, tarfile.DIRTYPE)]))
    assert r.status_code in (200, 201), r.text
    policy = r.json()
    assert policy["path"].startswith("uploads/") and policy["scenario"] == "capacity"
    stored = policy_dir / policy["path"]
    assert sorted(p.name for p in stored.iterdir()) == ["config.json", "weights.safetensors"]
    d = c.post(f"/v1/policies/{policy['id']}/decisions", headers=H, json={"state": [0] * 10 + [5]})
    assert d.status_code == 201 and sum(d.json()["action"]) <= 3
    # the raw body (application/gzip), files at the top of the archive
    gz = {**H, "Content-Type": "application/gzip"}
    r = c.post("/v1/policies:upload", headers=gz, content=_tar(_good(policy_dir)))
    assert r.status_code in (200, 201), r.text
    # a zip
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, content in _files(policy_dir).items():
            z.writestr(f"ck/{name}", content)
    r = c.post("/v1/policies:upload", headers={**H, "Content-Type": "application/zip"}, content=buf.getvalue())
    assert r.status_code in (200, 201), r.text
    assert r.json()["policy_version"] == policy["policy_version"]


def _link_zip(policy_dir: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", _files(policy_dir)["config.json"])
        info = zipfile.ZipInfo("weights.safetensors")
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc/passwd")
    return buf.getvalue()


JUNK_WEIGHTS = b"\x10" + b"\x00" * 7 + b"nope" * 4
CASES = {
    "traversal": (lambda d: _tar([("../config.json", b"{}", tarfile.REGTYPE), *_good(d)[1:]]), 422, "traversal"),
    "nested traversal": (lambda d: _tar([("ck/../../x/config.json", b"{}", tarfile.REGTYPE)]), 422, "traversal"),
    "absolute": (lambda d: _tar([("/tmp/config.json", b"{}", tarfile.REGTYPE)]), 422, "absolute"),
    "symlink": (lambda d: _tar([*_good(d)[:1], ("weights.safetensors", None, tarfile.SYMTYPE)]), 422, "link"),
    "hard link": (lambda d: _tar([*_good(d)[:1], ("weights.safetensors", None, tarfile.LNKTYPE)]), 422, "link"),
    "zip symlink": (_link_zip, 422, "link"),
    "fifo": (lambda d: _tar([*_good(d), ("pipe", None, tarfile.FIFOTYPE)]), 422, "not a regular file"),
    "extra file": (lambda d: _tar([*_good(d), ("run.py", b"print(1)", tarfile.REGTYPE)]), 422, "unexpected"),
    "pickle": (lambda d: _tar([*_good(d)[:1], ("model.pt", b"\x80\x04", tarfile.REGTYPE)]), 422, "unexpected"),
    "deep": (lambda d: _tar([("a/b/config.json", b"{}", tarfile.REGTYPE)]), 422, "unexpected path"),
    "duplicate": (lambda d: _tar(_good(d) + _good(d)[:1]), 422, "twice"),
    "two dirs": (lambda d: _tar([_good(d, "a/")[0], _good(d, "b/")[1]]), 422, "different directories"),
    "junk": (lambda d: b"this is not an archive at all" * 10, 422, "not a"),
    "empty": (lambda d: b"", 422, "empty"),
    "truncated": (lambda d: _tar(_good(d))[:200], 422, "archive"),
    "missing weights": (lambda d: _tar(_good(d)[:1]), 422, "no weights.safetensors"),
    "missing config": (lambda d: _tar(_good(d)[1:]), 422, "no config.json"),
    "junk weights": (
        lambda d: _tar([*_good(d)[:1], ("weights.safetensors", JUNK_WEIGHTS, tarfile.REGTYPE)]),
        422,
        "safetensors",
    ),
    "wrong weights": (
        lambda d: _tar([*_good(d)[:1], ("weights.safetensors", _other_weights(), tarfile.REGTYPE)]),
        422,
        "cannot load checkpoint",
    ),
    "config not json": (lambda d: _tar([("config.json", b"{nope", tarfile.REGTYPE), *_good(d)[1:]]), 422, "JSON"),
    "huge network": (
        lambda d: _tar([("config.json", _huge_config(d), tarfile.REGTYPE), *_good(d)[1:]]),
        422,
        "network",
    ),
    "too many members": (
        lambda d: _tar(_good(d) + [(f"d{i}", None, tarfile.DIRTYPE) for i in range(20)]),
        422,
        "members",
    ),
}


def _other_weights() -> bytes:
    import torch
    from safetensors.torch import save

    return save({"nonsense": torch.zeros(3)})


def _huge_config(policy_dir: Path) -> bytes:
    meta = json.loads(_files(policy_dir)["config.json"])
    meta["network"]["hidden"] = [10**7, 10**7]
    return json.dumps(meta).encode()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_archives_are_refused(client, policy_dir, case):
    make, status, reason = CASES[case]
    before = sorted((policy_dir / "uploads").iterdir()) if (policy_dir / "uploads").exists() else []
    r = _multipart(client, make(policy_dir))
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["field"] == "file" and reason.lower() in err["message"].lower(), err
    after = sorted((policy_dir / "uploads").iterdir()) if (policy_dir / "uploads").exists() else []
    assert after == before  # nothing left behind
    assert not (policy_dir.parent / "config.json").exists() and not Path("/tmp/config.json").exists()


def test_upload_limits_and_media_types(app_factory, tmp_path, policy_dir, monkeypatch):
    monkeypatch.setenv("REDWOOD_UPLOAD_MAX_BYTES", "2000")
    monkeypatch.setenv("REDWOOD_UPLOAD_MAX_UNCOMPRESSED", "100000")
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        big = _tar([*_good(policy_dir), ("padding", b"\x00" * 10, tarfile.REGTYPE)])
        noise = bytes(range(256)) * 20  # incompressible
        r = _multipart(c, _tar([("config.json", noise, tarfile.REGTYPE)], gz=False))
        assert r.status_code == 413 and r.json()["error"]["field"] == "file", r.text
        bomb = _tar([("config.json", b"\0" * 200_000, tarfile.REGTYPE)])  # compresses to a few hundred bytes
        assert len(bomb) < 2000
        r = _multipart(c, bomb)
        assert r.status_code == 422 and "uncompressed" in r.json()["error"]["message"], r.text
        r = c.post("/v1/policies:upload", headers={**H, "Content-Type": "text/plain"}, content=big)
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
        r = c.post("/v1/policies:upload", headers=H, data={"other": "x"}, files={"x": ("a", b"b")})
        assert r.status_code == 422 and r.json()["error"]["field"] == "file"
        read = c.post("/v1/keys", headers=H, json={"name": "r", "scopes": ["read", "decide"]}).json()["key"]
        assert _multipart(c, big, headers={"X-API-Key": read}).status_code == 403


def test_the_same_checkpoint_uploaded_again_is_the_same_policy(client, policy_dir):
    """Uploads are stored by content: a repeat (another archive format included) returns the registered policy with
    200 and stores no second copy; a deleted policy's checkpoint uploaded again is registered anew."""
    first = _multipart(client, _tar(_good(policy_dir)))
    assert first.status_code == 201, first.text
    again = _multipart(client, _tar(_good(policy_dir, "x/"), gz=False), name="ckpt.tar")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], again.text
    assert len([p for p in (policy_dir / "uploads").iterdir() if not p.name.startswith(".")]) >= 1
    assert sum(1 for p in (policy_dir / "uploads").iterdir() if p.name == Path(first.json()["path"]).name) == 1
    assert client.delete(f"/v1/policies/{first.json()['id']}", headers=H).status_code in (200, 204)
    revived = _multipart(client, _tar(_good(policy_dir)))
    assert revived.status_code == 201 and revived.json()["id"] != first.json()["id"], revived.text
    d = client.post(f"/v1/policies/{revived.json()['id']}/decisions", headers=H, json={"state": [0] * 10 + [5]})
    assert d.status_code == 201, d.text
