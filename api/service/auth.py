"""API keys: ``rw_<id>_<secret>``, stored only as HMAC-SHA256(server secret, key); scopes read < decide < admin.

A request sends the key in ``X-API-Key``. Without a valid key: 401; with a key whose scopes do not cover the
route: 403. ``admin`` implies ``decide`` and ``read``; ``decide`` implies ``read``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from api.service.db import Database, api_keys
from api.service.errors import ApiError

SCOPES = ("read", "decide", "admin")
IMPLIED = {"read": {"read"}, "decide": {"read", "decide"}, "admin": {"read", "decide", "admin"}}
header_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (rw_...)")


@dataclass
class Principal:
    key_id: str
    scopes: frozenset[str]


def effective_scopes(scopes: list[str] | tuple[str, ...]) -> frozenset[str]:
    out: set[str] = set()
    for s in scopes:
        out |= IMPLIED[s]
    return frozenset(out)


class KeyStore:
    """Create, check, list and revoke keys; lookups are cached for ``ttl`` seconds (revocation delay)."""

    def __init__(self, db: Database, secret: str, ttl: float = 5.0) -> None:
        self.db, self._secret, self.ttl = db, secret.encode(), ttl
        self._cache: dict[str, tuple[Principal | None, float]] = {}
        self._lock = threading.Lock()

    def digest(self, key: str) -> str:
        return hmac.new(self._secret, key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

    def create(self, name: str, scopes: list[str], key: str | None = None) -> tuple[str, dict]:
        """A new key (returned once, never stored in clear) and its public record."""
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise ApiError(422, "invalid_input", f"scopes must be a non-empty subset of {SCOPES}", "scopes")
        key_id = uuid.uuid4().hex[:16]
        key = key or f"rw_{key_id}_{secrets.token_urlsafe(32)}"
        digest = self.digest(key)
        row = {
            "id": key_id,
            "hash": digest,
            "name": name,
            "scopes": ",".join(sorted(set(scopes))),
            "created_at": time.time(),
            "revoked": False,
        }
        try:
            with self.db.main.begin() as conn:
                if conn.execute(sa.select(api_keys.c.id).where(api_keys.c.hash == digest)).first():
                    return key, self.record_of(conn, digest)
                conn.execute(api_keys.insert().values(**row))
        except IntegrityError:  # the same key stored concurrently (e.g. a bootstrap key by two processes)
            with self.db.read.connect() as conn:
                return key, self.record_of(conn, digest)
        return key, _public(row)

    def record_of(self, conn, digest: str) -> dict:
        row = conn.execute(sa.select(api_keys).where(api_keys.c.hash == digest)).mappings().one()
        return _public(dict(row))

    def list(self) -> list[dict]:
        with self.db.read.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
        return [_public(dict(r)) for r in rows]

    def revoke(self, key_id: str, by: str | None = None) -> bool:
        """Revoke ``key_id`` (False: no such key). Refused with 409 when ``by`` (the requesting key's id) is the
        key itself, or when it is the last unrevoked admin key: either would lock every administrator out."""
        with self.db.main.begin() as conn:
            # the key and every unrevoked key, locked in one order (two admins revoking each other at once on
            # PostgreSQL: the second waits and then sees the first's revocation, instead of both passing the check)
            locked = conn.execute(
                sa.select(api_keys.c.id, api_keys.c.scopes, api_keys.c.revoked)
                .where(sa.or_(api_keys.c.id == key_id, api_keys.c.revoked.is_(False)))
                .order_by(api_keys.c.id)
                .with_for_update()
            ).all()
            row = next(((r[1], r[2]) for r in locked if r[0] == key_id), None)
            if row is None:
                return False
            if by is not None and key_id == by and not row[1]:
                raise ApiError(
                    409, "conflict", "a key cannot revoke itself: revoke it with another admin key", "key_id"
                )
            if "admin" in row[0].split(",") and not row[1]:
                admins = [r[1] for r in locked if r[0] != key_id and not r[2]]
                if not any("admin" in scopes.split(",") for scopes in admins):
                    raise ApiError(
                        409,
                        "conflict",
                        "this is the last admin key: create another admin key before revoking it",
                        "key_id",
                    )
            done = conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(revoked=True)).rowcount
        with self._lock:
            self._cache.clear()
        return bool(done)

    def cached(self, key: str) -> Principal | Literal[False] | None:
        """The cached principal (None: known bad key), or False when the cache has no fresh entry."""
        with self._lock:
            hit = self._cache.get(self.digest(key))
        return hit[0] if hit is not None and hit[1] > time.monotonic() else False

    def lookup(self, key: str) -> Principal | None:
        digest = self.digest(key)
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self.db.read.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.hash == digest)).mappings().first()
        principal = None
        if row is not None and not row["revoked"]:
            principal = Principal(row["id"], effective_scopes(row["scopes"].split(",")))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (principal, now + self.ttl)
        return principal


def _public(row: dict) -> dict:
    return {
        "id": row["id"],
        "name": row["name"],
        "scopes": row["scopes"].split(","),
        "created_at": row["created_at"],
        "revoked": bool(row["revoked"]),
    }


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency admitting keys whose scopes cover ``scope``."""

    async def dependency(request: Request, api_key: str | None = Security(header_scheme)) -> Principal:
        # async: a cache hit costs no thread-pool hop; a miss reads the database in the thread pool
        if not api_key:
            raise ApiError(401, "unauthorized", "missing API key (X-API-Key header)", "X-API-Key")
        if len(api_key) > 200:
            raise ApiError(401, "unauthorized", "unknown API key", "X-API-Key")
        keys: KeyStore = request.app.state.keys
        hit = keys.cached(api_key)
        principal = await run_in_threadpool(keys.lookup, api_key) if hit is False else hit
        if principal is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key", "X-API-Key")
        if scope not in principal.scopes:
            raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope", "X-API-Key")
        return principal

    return dependency


ReadKey = Annotated[Principal, Depends(require("read"))]
DecideKey = Annotated[Principal, Depends(require("decide"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]
