"""Policies: register a checkpoint directory from the server's policy directory, list, get, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse

from api.service.auth import AdminKey, ReadKey
from api.service.errors import responses
from api.service.schemas import PolicyCreate, PolicyInfo, PolicyList

router = APIRouter(prefix="/policies", tags=["policies"])
PolicyId = Annotated[str, Path(max_length=64)]


@router.post(
    "",
    response_model=PolicyInfo,
    status_code=201,
    responses=responses(
        400,
        401,
        403,
        404,
        413,
        422,
        extra={
            200: {
                "model": PolicyInfo,
                "description": "Already registered (same checkpoint directory and weights): the existing policy",
            }
        },
    ),
)
def policy_register(body: PolicyCreate, request: Request, _: AdminKey):
    """``path`` is relative to the policy directory; '..', absolute paths and escaping symlinks are refused.
    Idempotent: ``p``, ``p/``, ``./p`` and ``p/.`` name one checkpoint directory, and registering a directory
    whose weights are already registered returns that policy with 200 (201 for a new policy)."""
    info, created = request.app.state.policies.register(body.path)
    return JSONResponse(PolicyInfo.model_validate(info).model_dump(mode="json"), status_code=201 if created else 200)


@router.get("", response_model=PolicyList, responses=responses(401, 403))
def policy_list(request: Request, _: ReadKey) -> dict:
    return {"policies": request.app.state.policies.list()}


@router.get("/{policy_id}", response_model=PolicyInfo, responses=responses(401, 403, 404))
def policy_get(policy_id: PolicyId, request: Request, _: ReadKey) -> dict:
    return request.app.state.policies.get(policy_id)


@router.delete("/{policy_id}", status_code=204, response_class=Response, responses=responses(401, 403, 404))
def policy_delete(policy_id: PolicyId, request: Request, _: AdminKey) -> Response:
    request.app.state.policies.delete(policy_id)
    return Response(status_code=204)
