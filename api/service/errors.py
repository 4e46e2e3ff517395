"""One error shape for every failure: ``{"error": {"code", "message", "field"}}``; bad input is always 4xx."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from scenarios.errors import InfeasibleActionError, InvalidInputError

log = logging.getLogger("redwood.service")


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """Raised by routes and services; rendered as the error body with ``status``."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


DESCRIPTIONS = {
    400: "Malformed request (bad JSON, bad header)",
    401: "Missing or unknown API key",
    403: "The API key lacks the required scope",
    404: "Not found",
    409: "Conflict with the stored state",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input (the field is named)",
    500: "Internal error (never for bad input)",
}


def responses(*codes: int, extra: dict[int | str, dict[str, Any]] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries: the route's own ``extra`` ones first, then the error ``codes`` (500 always
    included; 415 with 413: routes with a body)."""
    codes = (*codes, 415) if 413 in codes and 415 not in codes else codes
    errors = {c: {"model": ErrorBody, "description": DESCRIPTIONS[c]} for c in sorted({*codes, 500})}
    return (extra or {}) | errors


def _field_of(loc: Sequence[object]) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


_JSON_PARSE_FAILED = "There was an error parsing the body"  # FastAPI's detail for RecursionError, bad UTF-8, ...


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _expects_json_body(request: Request) -> bool:
    """Whether the matched route reads a JSON body (not a form or file upload)."""
    from fastapi import params

    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    return field is not None and not isinstance(getattr(field, "field_info", None), params.Form)


def unsupported_media_type(request: Request) -> JSONResponse | None:
    """415 when a JSON route receives a body declared as something else (FastAPI would not parse it and would
    report a confusing missing or invalid body instead)."""
    content_type = request.headers.get("content-type")
    if content_type is None or _is_json(content_type) or not _expects_json_body(request):
        return None
    return error_response(
        415,
        "unsupported_media_type",
        f"this route takes a JSON body: send Content-Type: application/json, not {content_type[:100]!r}",
        "Content-Type",
    )


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method the application serves at the request's path (for the Allow header of a 405): the methods
    some route matches fully (a Starlette 405 names only the first route that matched the path)."""
    from starlette.routing import Match

    out = []
    for method in METHODS:
        scope = dict(request.scope, method=method)
        for route in request.app.router.routes:
            try:
                match, _ = route.matches(scope)
            except Exception:  # pragma: no cover - a route type that cannot match this scope
                continue
            if match == Match.FULL:
                out.append(method)
                break
    return out


def install_handlers(app: FastAPI) -> None:
    """Override FastAPI's validation and HTTP error handlers with the error shape."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "ApiKey"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        wrong_type = unsupported_media_type(request)
        if wrong_type is not None:
            return wrong_type
        errs = exc.errors()
        err = errs[0] if errs else {"loc": (), "msg": "invalid request", "type": "invalid"}
        kind = str(err.get("type", "invalid"))
        code = "invalid_json" if kind == "json_invalid" else "invalid_input"
        status = 400 if kind == "json_invalid" else 422
        field = "body" if kind == "json_invalid" else _field_of(err.get("loc", ()))
        return error_response(status, code, str(err.get("msg", "invalid input")), field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _JSON_PARSE_FAILED:  # deep nesting, invalid UTF-8, ...
            wrong_type = unsupported_media_type(request)
            if wrong_type is not None:
                return wrong_type
            return error_response(
                400, "invalid_json", "invalid JSON: the body is not UTF-8 encoded JSON, or is nested too deeply", "body"
            )
        code = {
            404: "not_found",
            405: "method_not_allowed",
            401: "unauthorized",
            403: "forbidden",
            413: "too_large",
            415: "unsupported_media_type",
        }.get(exc.status_code, "http_error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            methods = allowed_methods(request)
            if methods:
                headers["Allow"] = ", ".join(methods)
        return error_response(exc.status_code, code, str(exc.detail), None, headers or None)

    @app.exception_handler(InvalidInputError)
    async def _invalid(request: Request, exc: InvalidInputError) -> JSONResponse:
        return error_response(422, "invalid_input", exc.reason, exc.field)

    @app.exception_handler(InfeasibleActionError)
    async def _infeasible(request: Request, exc: InfeasibleActionError) -> JSONResponse:
        return error_response(422, "infeasible_action", str(exc), exc.field)

    @app.exception_handler(MemoryError)
    async def _memory(request: Request, exc: MemoryError) -> JSONResponse:
        log.warning("out of memory on %s %s", request.method, request.url.path)
        return error_response(422, "too_expensive", "the request needs more memory than the service has", None)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error", None)
