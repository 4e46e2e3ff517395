"""Routers of the ``/v1`` API, one concept per module."""

from api.service.routes import decisions, keys, meta, policies, scenarios, sessions

ROUTERS = [meta.router, scenarios.router, keys.router, policies.router, decisions.router, sessions.router]

__all__ = ["ROUTERS"]
