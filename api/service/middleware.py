"""ASGI middleware: arrival time stamps, a request body size limit (413) and strict JSON (no NaN / Infinity
tokens, 400)."""

from __future__ import annotations

import json
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.service.errors import error_response


class _RejectedError(ValueError):
    pass


def _reject_constant(token: str) -> float:
    raise _RejectedError(f"{token} is not a JSON number")


_SUSPECT = re.compile(rb"NaN|Infinity|[0-9]{1000}")


def strict_json_error(body: bytes) -> str | None:
    """Why ``body`` is not strict JSON, or None (empty bodies pass; FastAPI reports missing bodies). Bodies
    without a NaN / Infinity token or a 1000-digit run are left to FastAPI's own parser (no double parse)."""
    if not body.strip() or _SUSPECT.search(body) is None:
        return None
    try:
        json.loads(body, parse_constant=_reject_constant)
    except _RejectedError as exc:
        return str(exc)
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, over-long integer literals, deep nesting
        return f"invalid JSON: {str(exc)[:200]}"
    return None


class BodyLimitMiddleware:
    """Buffer request bodies up to ``max_bytes`` (413 beyond) and reject non-strict JSON bodies."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_large = error_response(413, "too_large", f"request body exceeds {self.max_bytes} bytes")
        if length is not None:
            try:
                if int(length) > self.max_bytes:
                    await too_large(scope, receive, send)
                    return
            except ValueError:
                await error_response(400, "bad_request", "invalid Content-Length")(scope, receive, send)
                return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b"json" in headers.get(b"content-type", b"application/json"):
            reason = strict_json_error(body)
            if reason is not None:
                await error_response(400, "invalid_json", reason, "body")(scope, receive, send)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class ArrivalTimeMiddleware:
    """Stamp ``request.state.received`` (``time.perf_counter()``) before anything else runs, so a decision's
    deadline also covers reading and validating its body and waiting for an engine."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["received"] = time.perf_counter()
        await self.app(scope, receive, send)
