"""The operator page: ``GET /v1/ui`` (read scope), its log-in form and log-out.

A browser cannot easily send ``X-API-Key``, so the page also takes the key from the ``redwood_ui_key`` cookie
(set by ``POST /v1/ui/login``: HttpOnly, SameSite=Strict, path ``/v1/ui``, Secure over HTTPS, 8 hours) or
from ``?key=`` (convenient for scripts, but the key then lands in browser history and proxy logs: prefer
the form)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.service import ui
from api.service.errors import ApiError
from api.service.keycheck import principal_for
from api.service.observability import package_version

router = APIRouter(prefix="/ui", tags=["operator"], include_in_schema=False)
COOKIE = "redwood_ui_key"
COOKIE_SECONDS = 8 * 3600


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=ui.HEADERS)


@router.get("", response_class=HTMLResponse)
async def operator_page(request: Request, key: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    """Policies, training jobs, bandit sessions and recent decisions, with charts."""
    key = key or request.cookies.get(COOKIE)
    if not key:
        return RedirectResponse("/v1/ui/login", status_code=303, headers=ui.HEADERS)
    try:
        principal = await principal_for(request, key, "read", "key")
    except ApiError as exc:
        page = _html(ui.login_page(exc.message), exc.status)
        page.delete_cookie(COOKIE, path="/v1/ui")
        return page
    data = await run_in_threadpool(ui.collect, request.app)
    return _html(ui.page(data, package_version(), principal.key_id))


@router.get("/login", response_class=HTMLResponse)
async def login_form() -> Response:
    return _html(ui.login_page())


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, key: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Check the key (read scope); on success store it in the page's cookie and go to the page."""
    try:
        await principal_for(request, key.strip(), "read", "key")
    except ApiError as exc:
        return _html(ui.login_page(exc.message), exc.status)
    out = RedirectResponse("/v1/ui", status_code=303, headers=ui.HEADERS)
    out.set_cookie(
        COOKIE,
        key.strip(),
        max_age=COOKIE_SECONDS,
        path="/v1/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return out


@router.post("/logout")
async def logout() -> Response:
    out = RedirectResponse("/v1/ui/login", status_code=303, headers=ui.HEADERS)
    out.delete_cookie(COOKIE, path="/v1/ui")
    return out
