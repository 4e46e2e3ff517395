"""The FastAPI application factory: storage, keys, policies, decisions and bandit sessions under ``/v1``."""

from __future__ import annotations

import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.service.auth import KeyStore
from api.service.batch import BatchDecisionService
from api.service.db import open_database
from api.service.decisions import DecisionService
from api.service.errors import install_handlers
from api.service.job_runner import JobRunner
from api.service.jobs import JobService, JobSettings, child_args
from api.service.middleware import ArrivalTimeMiddleware, BodyLimitMiddleware
from api.service.observability import ObservabilityMiddleware, configure_logging
from api.service.openapi import install_openapi
from api.service.policies import PolicyRegistry
from api.service.routes import ROUTERS, UNPREFIXED
from api.service.sessions import SessionService
from api.service.settings import Settings

DESCRIPTION = """Combinatorial decisions over HTTP: register trained policies and ask for allocation decisions,
or run restless / combinatorial bandit sessions with feedback. Send an API key in `X-API-Key`; scopes are
`read`, `decide` (implies read) and `admin` (implies both). Every error is `{"error": {"code", "message",
"field"}}`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """A ready application (database opened, schema created, bootstrap key stored)."""
    settings = settings or Settings.from_env()
    if os.environ.get("REDWOOD_LOG_JSON") == "1":  # set by `redwood serve` for its worker processes
        configure_logging(os.environ.get("REDWOOD_LOG_LEVEL", "warning"))
    db = open_database(settings.db_url, settings.sqlite_synchronous, settings.log_synchronous)
    keys = KeyStore(db, settings.resolved_secret(), settings.key_cache_seconds)
    if settings.bootstrap_key:
        keys.create("bootstrap", ["admin"], key=settings.bootstrap_key)
    registry = PolicyRegistry(db, settings.policy_dir, settings.engine_pool)
    jobs = JobService(db, JobSettings.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runner = app.state.job_runner = JobRunner(jobs, child_args(settings, jobs.limits)).start()
        yield
        runner.stop()  # running jobs go back to the queue
        app.state.sessions.close()
        db.dispose()

    app = FastAPI(
        title="Redwood",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings, app.state.db, app.state.keys = settings, db, keys
    app.state.policies = registry
    app.state.jobs = jobs
    app.state.decisions = DecisionService(db, registry, settings.max_decision_seconds)
    app.state.batch_decisions = BatchDecisionService(db, app.state.decisions, settings.max_batch_states)
    app.state.sessions = SessionService(db)
    install_handlers(app)
    install_openapi(app)  # offline Swagger UI at /v1/docs, JSON Schema bounds in the document
    for router in ROUTERS:
        app.include_router(router, prefix="/v1")
    for router in UNPREFIXED:  # GET /metrics, where scrapers look
        app.include_router(router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ObservabilityMiddleware, fastapi_app=app)  # request id, metrics, access log
    app.add_middleware(ArrivalTimeMiddleware)  # added last: the outermost layer
    return app
