"""API keys (admin scope): create (the secret is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from api.service.auth import AdminKey
from api.service.errors import ApiError, responses
from api.service.schemas import KeyCreate, KeyCreated, KeyList

router = APIRouter(prefix="/keys", tags=["keys"])
KeyId = Annotated[str, Path(max_length=64)]


@router.post("", response_model=KeyCreated, status_code=201, responses=responses(400, 401, 403, 413, 422))
def key_create(body: KeyCreate, request: Request, _: AdminKey) -> dict:
    key, info = request.app.state.keys.create(body.name, list(body.scopes))
    return {"key": key, "info": info}


@router.get("", response_model=KeyList, responses=responses(401, 403))
def key_list(request: Request, _: AdminKey) -> dict:
    return {"keys": request.app.state.keys.list()}


@router.delete("/{key_id}", status_code=204, response_class=Response, responses=responses(401, 403, 404, 409))
def key_revoke(key_id: KeyId, request: Request, principal: AdminKey) -> Response:
    """409 when the key would revoke itself or the last admin key (which would lock every admin out)."""
    if not request.app.state.keys.revoke(key_id, by=principal.key_id):
        raise ApiError(404, "not_found", f"no key {key_id!r}", "key_id")
    return Response(status_code=204)
