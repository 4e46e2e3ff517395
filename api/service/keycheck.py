"""Checking an API key that did not come in ``X-API-Key`` (the metrics scrape's bearer token, the operator
page's cookie or ``?key=``), with the same store, cache and scopes as :func:`api.service.auth.require`."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.service.auth import KeyStore, Principal
from api.service.errors import ApiError


async def principal_for(request: Request, key: str | None, scope: str, field: str = "X-API-Key") -> Principal:
    """The key's principal when its scopes cover ``scope``; ApiError 401 / 403 otherwise."""
    if not key:
        raise ApiError(401, "unauthorized", "missing API key", field)
    if len(key) > 200:
        raise ApiError(401, "unauthorized", "unknown API key", field)
    keys: KeyStore = request.app.state.keys
    hit = keys.cached(key)
    principal = await run_in_threadpool(keys.lookup, key) if hit is False else hit
    if principal is None:
        raise ApiError(401, "unauthorized", "unknown or revoked API key", field)
    if scope not in principal.scopes:
        raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope", field)
    return principal


def bearer_or_header(request: Request) -> str | None:
    """``X-API-Key``, else the token of ``Authorization: Bearer <key>`` (what Prometheus sends with
    ``authorization: {credentials: <key>}`` in a scrape config)."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
