"""Training and sweep jobs (submit and cancel: admin scope; read: read scope), and checkpoint archive uploads
(admin scope). See :mod:`api.service.jobs` and :mod:`api.service.uploads`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt
from starlette.concurrency import run_in_threadpool

from api.service.auth import AdminKey, ReadKey
from api.service.errors import ApiError, responses

router = APIRouter(tags=["jobs"])
JobId = Annotated[str, Path(max_length=64)]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
GenInt = Annotated[StrictInt, Field(ge=0, le=2**32 - 1)]


class JobCreate(BaseModel):
    """``kind: "train"``: ``scenario`` plus either ``instance`` or generator options (``n_arms``, ``budget``,
    ``horizon``; ``seed`` seeds both the generator and training), ``config`` (DQNConfig fields; unknown ones are
    refused), optional ``policy_name`` (a label kept in the result). ``kind: "sweep"``: ``config`` holds
    SweepConfig fields (``domains``, ``seeds``, ``n_arms``, ``budget``, ``horizon``, ``train_episodes``,
    ``eval_episodes``, ``dqn``, ...). Sizes are bounded by the server's job limits (422 naming the field)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kind: Literal["train", "sweep"]
    scenario: Annotated[str | None, Field(max_length=100)] = None
    instance: dict[str, Any] | None = None
    n_arms: GenInt | None = None
    budget: GenInt | None = None
    horizon: GenInt | None = None
    seed: GenInt | None = None
    config: dict[str, Any] | None = None
    policy_name: Annotated[str | None, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")] = None


class JobOut(BaseModel):
    id: str
    kind: Literal["train", "sweep"]
    state: JobState
    stage: str = Field(
        description="queued, starting, warm_start, training, saving, registering, sweeping, done, failed or cancelled"
    )
    progress: float = Field(description="fraction done, 0 to 1 (per episode while training)")
    spec: dict[str, Any] = Field(description="the validated, normalised spec")
    result: dict[str, Any] | None = Field(
        description="train: policy_id, policy_version, path, training summary; sweep: the aggregated summary"
    )
    error: str | None
    log: str | None = Field(description="the last lines of the job's log (omitted in lists)")
    attempts: int
    created_at: str
    started_at: str | None
    finished_at: str | None
    worker_pid: int | None
    lease_expires_at: str | None
    cancel_requested: bool


class JobList(BaseModel):
    jobs: list[JobOut]


@router.post("/jobs", response_model=JobOut, status_code=202, responses=responses(400, 401, 403, 413, 422))
def job_submit(body: JobCreate, request: Request, _: AdminKey) -> dict:
    """Validate and queue a training or sweep job; 202 with the job (poll ``GET /v1/jobs/{id}``)."""
    return request.app.state.jobs.submit(body.model_dump(exclude_none=True))


@router.get("/jobs", response_model=JobList, responses=responses(401, 403, 422))
def job_list(
    request: Request, _: ReadKey, state: JobState | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> dict:
    """Newest first (without the log tails)."""
    return {"jobs": request.app.state.jobs.list(state, limit)}


@router.get("/jobs/{job_id}", response_model=JobOut, responses=responses(401, 403, 404))
def job_get(job_id: JobId, request: Request, _: ReadKey) -> dict:
    return request.app.state.jobs.get(job_id)


def _cancel(request: Request, job_id: str) -> dict:
    return request.app.state.jobs.cancel(job_id)


@router.post("/jobs/{job_id}:cancel", response_model=JobOut, responses=responses(401, 403, 404, 409))
def job_cancel(job_id: JobId, request: Request, _: AdminKey) -> dict:
    """A queued job is cancelled at once; a running one is terminated by the process running it (the answer
    waits up to 10 s for that; ``cancel_requested: true`` with state ``running`` if it took longer). 409 when
    the job had already finished."""
    return _cancel(request, job_id)


@router.delete("/jobs/{job_id}", response_model=JobOut, responses=responses(401, 403, 404, 409))
def job_delete(job_id: JobId, request: Request, _: AdminKey) -> dict:
    """The same as ``POST /v1/jobs/{id}:cancel`` (the job's row stays, state ``cancelled``)."""
    return _cancel(request, job_id)


# ------------------------------------------------------------------------------------------ uploads
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": {"type": "string", "format": "binary", "description": ".tar.gz, .tar or .zip"}},
            }
        },
        "application/gzip": {"schema": {"type": "string", "format": "binary"}},
        "application/zip": {"schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    },
}
RAW_TYPES = (
    "application/gzip",
    "application/x-gzip",
    "application/zip",
    "application/x-tar",
    "application/octet-stream",
)


def _policy_info_model():
    from api.service.schemas import PolicyInfo

    return PolicyInfo


@router.post(
    "/policies:upload",
    response_model=_policy_info_model(),
    status_code=201,
    tags=["policies"],
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=responses(
        400,
        401,
        403,
        413,
        415,
        422,
        extra={200: {"model": _policy_info_model(), "description": "Already registered (same weights)"}},
    ),
)
async def policy_upload(request: Request, _: AdminKey):
    """Register a checkpoint from an archive (a .tar.gz, .tar or .zip of ``config.json`` +
    ``weights.safetensors``, at the top or in one directory): as a multipart ``file`` field, or as the raw body
    (``application/gzip``, ``application/zip``, ``application/octet-stream``). Links, ``..``, absolute names,
    other files, too many members or bytes are refused (422 / 413, naming the reason); nothing is unpickled."""
    from api.service.uploads import upload

    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    limits = request.app.state.jobs.limits
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=4)
        except Exception as exc:  # malformed multipart
            raise ApiError(400, "bad_request", f"malformed multipart body: {str(exc)[:200]}", "file") from exc
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise ApiError(422, "invalid_input", "multipart field 'file' (the archive) is required", "file")
        data = await file.read(limits.upload_max_bytes + 1)
        await form.close()
    elif ctype in RAW_TYPES:
        data = await request.body()
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send multipart/form-data (field 'file') or the archive as "
            "application/gzip, application/zip or application/octet-stream",
            "Content-Type",
        )
    info, created = await run_in_threadpool(upload, data, request.app.state.policies, limits)
    model = _policy_info_model()
    return JSONResponse(model.model_validate(info).model_dump(mode="json"), status_code=201 if created else 200)
