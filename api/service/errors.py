"""One error shape for every failure: ``{"error": {"code", "message", "field"}}``; bad input is always 4xx."""

from __future__ import annotations

import logging

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


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
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


def responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` entries for error ``codes`` (500 always included)."""
    return {c: {"model": ErrorBody, "description": DESCRIPTIONS[c]} for c in (*codes, 500)}


def _field_of(loc: tuple | list) -> str | None:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or None


def install_handlers(app: FastAPI) -> None:
    """Override FastAPI's validation and HTTP error handlers with the error shape."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "ApiKey"} if exc.status == 401 else None
        return error_response(exc.status, exc.code, exc.message, exc.field, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        err = errs[0] if errs else {"loc": (), "msg": "invalid request", "type": "invalid"}
        kind = str(err.get("type", "invalid"))
        code = "invalid_json" if kind == "json_invalid" else "invalid_input"
        status = 400 if kind == "json_invalid" else 422
        field = "body" if kind == "json_invalid" else _field_of(err.get("loc", ()))
        return error_response(status, code, str(err.get("msg", "invalid input")), field)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden",
                413: "too_large", 415: "unsupported_media_type"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), None, getattr(exc, "headers", None))

    @app.exception_handler(InvalidInputError)
    async def _invalid(request: Request, exc: InvalidInputError) -> JSONResponse:
        return error_response(422, "invalid_input", exc.reason, exc.field)

    @app.exception_handler(InfeasibleActionError)
    async def _infeasible(request: Request, exc: InfeasibleActionError) -> JSONResponse:
        return error_response(422, "infeasible_action", str(exc), exc.field)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error", None)
