"""Health and version (no key needed)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.service.errors import responses
from api.service.schemas import Health, Version

router = APIRouter(tags=["meta"])


@router.get(
    "/health",
    response_model=Health,
    responses=responses(extra={503: {"model": Health, "description": "Database down"}}),
)
def health(request: Request):
    try:
        with request.app.state.db.read.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "degraded", "database": "unavailable"}, status_code=503)
    return {"status": "ok", "database": "ok"}


@router.get("/version", response_model=Version, responses=responses())
async def version() -> dict:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        v = dist_version("redwood")
    except PackageNotFoundError:
        v = "0+unknown"
    return {"version": v, "api": "v1"}
