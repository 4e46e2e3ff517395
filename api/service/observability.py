"""Structured logs and per-request observability.

* :class:`JsonFormatter`: one JSON object per line with ``time`` (UTC, ISO 8601), ``level``, ``logger``,
  ``message``, ``request_id`` (of the request being served, when there is one) and, for the access line of a
  request, ``method``, ``route`` (the route template, not the raw path), ``status`` and ``duration_ms``;
  other ``extra=`` fields are kept, exceptions go in ``exc``.
* :func:`configure_logging`: that formatter on the ``redwood`` logger (idempotent), at a given level.
* :class:`ObservabilityMiddleware`: a request id per request (the incoming ``X-Request-ID`` when well formed,
  1-128 characters of ``A-Za-z0-9._:-``, else a new one), echoed in the response's ``X-Request-ID`` header and
  carried by every log record emitted while serving the request; request count and latency per route template
  (see :mod:`api.service.metrics`); one access line per request on ``redwood.service`` at INFO.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.service import metrics

log = logging.getLogger("redwood.service")
startup_log = logging.getLogger("redwood.service.startup")  # always at INFO: the start-up line is always shown

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("redwood_request_id", default=None)
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
_HANDLER_MARK = "_redwood_json"


class JsonFormatter(logging.Formatter):
    """Log records as single-line JSON objects."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str | int = "warning", stream=None) -> logging.Handler:
    """JSON lines on ``stream`` (stderr) for the ``redwood`` loggers at ``level``; calling it again replaces
    the handler it installed (never duplicates it)."""
    root = logging.getLogger("redwood")
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(log_level(level))
    startup_log.setLevel(logging.INFO)
    return handler


def log_level(level: str | int) -> int:
    """A ``logging`` level from uvicorn's ``--log-level`` names (``trace`` is DEBUG; unknown names WARNING)."""
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name == "TRACE":
        return logging.DEBUG
    value = logging.getLevelName(name)
    return value if isinstance(value, int) else logging.WARNING


def redact_url(url: str) -> str:
    """A database URL with its password replaced by ``***``."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("redwood")
    except PackageNotFoundError:
        return "0+unknown"


def log_startup(db_url: str, workers: int, **extra) -> None:
    startup_log.info(
        "redwood service starting",
        extra={
            "version": package_version(),
            "database": redact_url(db_url),
            "workers": workers,
            "pid": os.getpid(),
            **extra,
        },
    )


def _full_template(route, path: str) -> str:
    """``route.path`` with the prefix it was included under (FastAPI may nest included routers, whose routes
    then carry their path without the ``/v1`` prefix): the part of ``path`` before the suffix it matches."""
    template, regex = route.path, getattr(route, "path_regex", None)
    if regex is None or regex.match(path):
        return template
    for i in range(1, len(path)):
        if path[i] == "/" and regex.match(path[i:]):
            return path[:i] + template
    return template


def route_template(scope: Scope, app) -> str:
    """The matched route's path template (``/v1/sessions/{session_id}/select``); a request refused before
    routing (a 413, for instance) is matched here; ``unmatched`` when no route fits."""
    path = scope.get("path", "")
    route = scope.get("route")
    if getattr(route, "path", None):
        return _full_template(route, path)
    for template, regex in _templates(app):
        if regex.match(path):
            return template
    return "unmatched"


def _templates(app) -> list[tuple[str, re.Pattern]]:
    """The app's documented path templates with their regular expressions (built once per app)."""
    cached = getattr(getattr(app, "state", None), "_route_templates", None)
    if cached is not None:
        return cached
    from starlette.routing import compile_path

    try:
        paths = list((app.openapi().get("paths") or {}).keys())
    except Exception:
        paths = []
    out = [(p, compile_path(p)[0]) for p in paths]
    if getattr(app, "state", None) is not None:
        app.state._route_templates = out
    return out


class ObservabilityMiddleware:
    """Request id, metrics and the access log line of every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, fastapi_app=None) -> None:
        self.app, self.fastapi_app = app, fastapi_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers") or []:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        rid = incoming if incoming is not None and REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        start, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        failed = True
        try:
            await self.app(scope, receive, send_with_id)
            failed = False
        finally:
            seconds = time.perf_counter() - start
            route, method = route_template(scope, self.fastapi_app), scope.get("method", "")
            try:
                metrics.observe_request(method, route, status, seconds)
            except Exception:  # metrics never break a request
                log.exception("recording metrics failed")
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %d",
                    method,
                    route,
                    status,
                    extra={
                        "request_id": rid,
                        "method": method,
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000.0, 3),
                    },
                )
            if not failed:  # an exception goes on to the 500 handler outside: its log line keeps the id
                request_id_var.reset(token)
