"""Prometheus metrics at ``GET /metrics`` (outside ``/v1``, where scrapers look): a read-scope key in
``X-API-Key`` or as ``Authorization: Bearer <key>``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.service import metrics
from api.service.errors import responses
from api.service.keycheck import bearer_or_header, principal_for

router = APIRouter(tags=["observability"])


@router.get(
    "/metrics",
    response_class=Response,
    responses=responses(
        401, 403, extra={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}}
    ),
)
async def metrics_scrape(request: Request) -> Response:
    """Request counts and latencies per route template, decisions per policy and selector (status, solver time,
    deadline-flagged), bandit selections and feedback, training jobs by state; with ``--workers N`` the sum
    over every worker process. Needs a read-scope key (``X-API-Key``, or ``Authorization: Bearer``)."""
    await principal_for(request, bearer_or_header(request), "read")
    body, content_type = await run_in_threadpool(metrics.exposition, request.app.state.db)
    return Response(body, media_type=content_type)
