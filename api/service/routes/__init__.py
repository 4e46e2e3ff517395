"""Routers of the ``/v1`` API, one concept per module."""

from api.service.routes import (
    batch,
    decisions,
    jobs,
    keys,
    meta,
    metrics,
    planners,
    policies,
    scenarios,
    sessions,
    ui,
)

ROUTERS = [
    meta.router,
    scenarios.router,
    keys.router,
    policies.router,
    planners.router,
    decisions.router,
    batch.router,
    sessions.router,
    ui.router,
]
UNPREFIXED = [metrics.router]  # outside /v1
ROUTERS += [jobs.router]  # training jobs, checkpoint uploads

__all__ = ["ROUTERS", "UNPREFIXED"]
