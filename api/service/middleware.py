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


class _LongInteger:
    """Stands for an integer literal too long to be a number any field accepts (found after parsing, by path)."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


MAX_INT_DIGITS = 400  # longer integer literals are out of range for every field (the widest is < 2**64)


def _parse_int(text: str) -> int | _LongInteger:
    digits = len(text.lstrip("-"))
    return _LongInteger(digits) if digits > MAX_INT_DIGITS else int(text)


def _find_long(value: object, path: tuple) -> tuple[tuple, _LongInteger] | None:
    stack = [(value, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, _LongInteger):
            return where, node
        if isinstance(node, dict):
            stack.extend((v, (*where, k)) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((v, (*where, i)) for i, v in reversed(list(enumerate(node))))
    return None


def strict_json_problem(body: bytes) -> tuple[str, str] | None:
    """(reason, field) when ``body`` is not strict JSON, or None (empty bodies pass; FastAPI reports missing
    bodies). Bodies without a NaN / Infinity token or a 1000-digit run are left to FastAPI's own parser (no
    double parse). An over-long integer is reported as out of range, naming the field where it stands."""
    if not body.strip() or _SUSPECT.search(body) is None:
        return None
    try:
        parsed = json.loads(body, parse_constant=_reject_constant, parse_int=_parse_int)
    except _RejectedError as exc:
        return str(exc), "body"
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, over-long number literals, deep nesting
        return f"invalid JSON: {str(exc)[:200]}", "body"
    found = _find_long(parsed, ())
    if found is not None:
        where, number = found
        field = ".".join(str(p) for p in where) or "body"
        return f"number out of range: an integer of {number.digits} digits is too long for {field}", field
    return None


def strict_json_error(body: bytes) -> str | None:
    """Why ``body`` is not strict JSON, or None (see :func:`strict_json_problem`)."""
    problem = strict_json_problem(body)
    return None if problem is None else problem[0]


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
            problem = strict_json_problem(body)
            if problem is not None:
                reason, field = problem
                status, code = (400, "invalid_json") if field == "body" else (422, "invalid_input")
                await error_response(status, code, reason, field)(scope, receive, send)
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
