"""Decisions: POST a state to a policy, get the Decision; ``Idempotency-Key`` replays the stored answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request

from api.service.auth import DecideKey, ReadKey
from api.service.errors import responses
from api.service.fastjson import json_response
from api.service.schemas import DecisionOut, DecisionRequest, with_iso_times

router = APIRouter(tags=["decisions"])
Id = Annotated[str, Path(max_length=64)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[!-~]+$",
        description="same key + same body: the stored decision again (200); same key + another body: 422",
    ),
]


@router.post(
    "/policies/{policy_id}/decisions",
    response_model=DecisionOut,
    status_code=201,
    responses=responses(
        400,
        401,
        403,
        404,
        409,
        413,
        422,
        extra={200: {"model": DecisionOut, "description": "Replayed (same Idempotency-Key and body)"}},
    ),
)
def decide(
    policy_id: Id, body: DecisionRequest, request: Request, principal: DecideKey, idempotency_key: IdempotencyKey = None
):
    """The best feasible action for ``state``. ``deadline_seconds`` counts from the request's arrival: the solver
    stops in time and the answer is flagged (``deadline_hit: true``; ``status: time_limit``, or the greedy
    answer when the deadline had passed before an engine was free)."""
    budget = request.app.state.settings.work_budget(principal.scopes)  # caps the solver's time limit
    out, replayed = request.app.state.decisions.decide(
        policy_id, body.model_dump(), idempotency_key, getattr(request.state, "received", None), max_seconds=budget
    )
    return json_response(with_iso_times(out), 200 if replayed else 201)


@router.get("/decisions/{decision_id}", response_model=DecisionOut, responses=responses(401, 403, 404))
def decision_get(decision_id: Id, request: Request, _: ReadKey) -> dict:
    return request.app.state.decisions.get(decision_id)
