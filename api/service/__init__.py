"""The Redwood REST service (FastAPI, versioned under ``/v1``): ``create_app(Settings(...))``."""

from api.service.app import create_app
from api.service.settings import Settings

__all__ = ["Settings", "create_app"]
