"""Planner policies: a policy from a planner alone (Whittle, Lagrangian, action-law Lagrangian, LP-update), no training.

The server builds the scenario instance (generated, or the caller's own JSON instance), fits the planner,
saves it as a checkpoint directory under the policy directory (``planners/<scenario>-<planner>-<version>``)
and registers it like any checkpoint: it then decides through ``POST /v1/policies/{id}/decisions``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.service.auth import AdminKey
from api.service.errors import responses
from api.service.schemas import PlannerCreate, PolicyInfo

router = APIRouter(prefix="/planners", tags=["policies"])


@router.post(
    "",
    response_model=PolicyInfo,
    status_code=201,
    responses=responses(
        400,
        401,
        403,
        413,
        422,
        extra={
            200: {
                "model": PolicyInfo,
                "description": "The same planner on the same instance is already registered: the existing policy",
            }
        },
    ),
)
def planner_create(body: PlannerCreate, request: Request, _: AdminKey):
    """Create a planner policy. ``planner`` is one of the library's planners (``GET /v1/scenarios`` lists the
    scenarios); give either ``instance`` (the scenario's JSON instance) or generator options (``n_arms``,
    ``budget``, ``seed``, ``horizon``). Idempotent: the same planner on the same instance returns the
    existing policy with 200."""
    info, created = request.app.state.policies.create_planner(body.model_dump(exclude_none=True))
    return JSONResponse(PolicyInfo.model_validate(info).model_dump(mode="json"), status_code=201 if created else 200)
