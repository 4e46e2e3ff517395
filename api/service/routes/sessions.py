"""Bandit sessions: create (Whittle restless, CUCB / Thompson combinatorial), select, feedback, state."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Request

from api.service.auth import DecideKey, ReadKey
from api.service.errors import responses
from api.service.fastjson import json_response
from api.service.limits import WORK_LIMIT
from api.service.schemas import with_iso_times
from api.service.session_schemas import (
    FeedbackOut,
    FeedbackRequest,
    SelectionOut,
    SelectRequest,
    SessionCreate,
    SessionInfo,
)

router = APIRouter(prefix="/sessions", tags=["bandit sessions"])


async def work_limit(request: Request, principal: DecideKey) -> AsyncIterator[tuple[float, int]]:
    """(deadline, max bytes) of this request's work, also published to the body's validation (async: it runs
    in the request's task before the body is validated, so the context variable is seen there; cleared after
    the request, so that no later request in the same context sees it)."""
    settings = request.app.state.settings
    received = getattr(request.state, "received", None) or time.perf_counter()
    limit = (received + settings.work_budget(principal.scopes), settings.max_work_bytes)
    token = WORK_LIMIT.set(limit)
    try:
        yield limit
    finally:
        try:
            WORK_LIMIT.reset(token)
        except ValueError:  # torn down in another context
            WORK_LIMIT.set(None)


Id = Annotated[str, Path(max_length=64)]


@router.post("", response_model=SessionInfo, status_code=201, responses=responses(400, 401, 403, 413, 422))
def session_create(
    body: Annotated[SessionCreate, Body()], request: Request, limit: Annotated[tuple[float, int], Depends(work_limit)]
) -> dict:
    """The set-up work is bounded: a Whittle session whose indices would take longer than the key's budget
    (counted from the request's arrival) or too much memory is refused with 422 ``too_expensive``."""
    return request.app.state.sessions.create(body.model_dump(), *limit)


@router.get("/{session_id}", response_model=SessionInfo, responses=responses(401, 403, 404))
def session_get(session_id: Id, request: Request, _: ReadKey) -> dict:
    return request.app.state.sessions.info(session_id)


@router.post(
    "/{session_id}/select",
    response_model=SelectionOut,
    status_code=201,
    responses=responses(400, 401, 403, 404, 413, 422),
)
def session_select(session_id: Id, body: SelectRequest, request: Request, _: DecideKey):
    """Which arms to act on now; the answer's ``id`` is the decision to report feedback for."""
    return json_response(with_iso_times(request.app.state.sessions.select(session_id, body.model_dump())), 201)


@router.post(
    "/{session_id}/decisions/{selection_id}/feedback",
    response_model=FeedbackOut,
    status_code=201,
    responses=responses(
        400,
        401,
        403,
        404,
        409,
        413,
        422,
        extra={200: {"model": FeedbackOut, "description": "Already recorded (identical feedback)"}},
    ),
)
def session_feedback(session_id: Id, selection_id: Id, body: FeedbackRequest, request: Request, _: DecideKey):
    """Scalar ``reward`` (split over the chosen arms by a linear model) or per-arm ``rewards``. Idempotent per
    decision: the same feedback again returns 200; different feedback for the same decision is a 409."""
    out, replayed = request.app.state.sessions.feedback(session_id, selection_id, body.model_dump(exclude_none=False))
    return json_response(with_iso_times(out), 200 if replayed else 201)
