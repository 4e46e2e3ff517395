"""Routers of the ``/v1`` API, one concept per module."""

from api.service.routes import batch, decisions, keys, meta, metrics, policies, scenarios, sessions, ui

ROUTERS = [meta.router, scenarios.router, keys.router, policies.router, decisions.router, batch.router,
           sessions.router, ui.router]
UNPREFIXED = [metrics.router]  # outside /v1

__all__ = ["ROUTERS", "UNPREFIXED"]
