"""The OpenAPI document and the interactive docs, served offline.

* ``/v1/docs``: Swagger UI whose script, style sheet and icon come from the ``swagger-ui-bundle`` package,
  mounted under ``/v1/docs/static`` (no CDN: the page works without internet access).
* ``/v1/redoc``: ReDoc, its standalone script from the ``fastapi-offline`` package at ``/v1/redoc/static``,
  without Google fonts (the page loads nothing from outside the service).
* The document's number bounds are JSON Schema keywords: pydantic writes ``gt`` / ``ge`` / ``lt`` / ``le`` for
  a constraint it cannot push into a single type (e.g. a bound on a union), which JSON Schema ignores; they are
  rewritten to ``exclusiveMinimum`` / ``minimum`` / ``exclusiveMaximum`` / ``maximum``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_URL = "/v1/docs"
STATIC_URL = "/v1/docs/static"
REDOC_URL = "/v1/redoc"
REDOC_STATIC_URL = "/v1/redoc/static"
KEYWORDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


def json_schema_bounds(node: Any) -> Any:
    """``node`` with pydantic's bound keywords renamed to JSON Schema's, in place (every level)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for short, keyword in KEYWORDS.items():
                if short in item and isinstance(item[short], int | float) and not isinstance(item[short], bool):
                    item.setdefault(keyword, item.pop(short))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return node


def swagger_assets() -> str | None:
    """The directory of the Swagger UI files of ``swagger-ui-bundle`` (None when not installed)."""
    try:
        import swagger_ui_bundle
    except ImportError:  # pragma: no cover - the package is in the service extra
        return None
    return str(swagger_ui_bundle.swagger_ui_path)


def redoc_assets() -> str | None:
    """The directory holding ``redoc.standalone.js`` in ``fastapi-offline`` (None when not installed)."""
    try:
        import fastapi_offline
    except ImportError:  # pragma: no cover - the package is in the service extra
        return None
    return str(Path(fastapi_offline.__file__).resolve().parent / "static")


def install_openapi(app: FastAPI) -> None:
    """Bounds rewritten in the document; the docs page and its assets served locally. Create the app with
    ``docs_url=None`` and ``redoc_url=None`` (this adds ``/v1/docs`` and ``/v1/redoc``)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = json_schema_bounds(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    assets = swagger_assets()
    if assets is not None:
        app.mount(STATIC_URL, StaticFiles(directory=assets), name="swagger-ui")
        js, css, icon = (
            f"{STATIC_URL}/{name}" for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
        )
    else:  # pragma: no cover - FastAPI's defaults (a CDN)
        js, css, icon = (
            "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js",
            "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css",
            "https://fastapi.tiangolo.com/img/favicon.png",
        )
    redirect = f"{DOCS_URL}/oauth2-redirect"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/v1/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=js,
            swagger_css_url=css,
            swagger_favicon_url=icon,
            oauth2_redirect_url=redirect,
        )

    @app.get(redirect, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    redoc = redoc_assets()
    if redoc is not None:
        app.mount(REDOC_STATIC_URL, StaticFiles(directory=redoc), name="redoc")
    redoc_js = (
        f"{REDOC_STATIC_URL}/redoc.standalone.js"
        if redoc is not None
        else "https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"  # pragma: no cover
    )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc_ui() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=app.openapi_url or "/v1/openapi.json",
            title=f"{app.title} API (ReDoc)",
            redoc_js_url=redoc_js,
            redoc_favicon_url=icon,
            with_google_fonts=False,
        )
