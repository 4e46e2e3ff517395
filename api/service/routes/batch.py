"""Batch decisions: POST many states to a policy, get one Decision each; ``Idempotency-Key`` replays the batch."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.service.auth import DecideKey
from api.service.batch import BatchDecisionOut, BatchDecisionRequest, public
from api.service.errors import responses
from api.service.fastjson import json_response
from api.service.routes.decisions import Id, IdempotencyKey

router = APIRouter(tags=["decisions"])


@router.post(
    "/policies/{policy_id}/decisions/batch",
    response_model=BatchDecisionOut,
    status_code=201,
    responses=responses(
        400,
        401,
        403,
        404,
        409,
        413,
        422,
        extra={200: {"model": BatchDecisionOut, "description": "Replayed (same Idempotency-Key and body)"}},
    ),
)
def decide_batch(
    policy_id: Id,
    body: BatchDecisionRequest,
    request: Request,
    principal: DecideKey,
    idempotency_key: IdempotencyKey = None,
):
    """One Decision per state, in order, each as ``POST .../decisions`` would answer (and logged as its own
    decision). ``deadline_seconds`` bounds the whole batch from the request's arrival: states reached after it
    get the greedy answer, flagged. More states than the server's ``max_batch_states`` (default 100): 422
    ``too_many_states``. Every state is validated before any is decided. With ``Idempotency-Key`` the whole
    answer is stored and replayed (200) for the same key and body; another body with that key is 422."""
    work_budget = getattr(request.app.state.settings, "work_budget", None)  # the key's budget, as on the single route
    budget = work_budget(principal.scopes) if work_budget is not None else None
    out, replayed = request.app.state.batch_decisions.decide(
        policy_id, body.model_dump(), idempotency_key, getattr(request.state, "received", None), budget
    )
    return json_response(public(out), 200 if replayed else 201)
