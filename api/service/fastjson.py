"""JSON responses for the hot routes, serialised once (orjson when installed); the routes' response models
still document them in OpenAPI."""

from __future__ import annotations

import json

from starlette.responses import Response

try:
    import orjson

    def _dumps(value: object) -> bytes:
        return orjson.dumps(value)
except ImportError:  # pragma: no cover - orjson is optional

    def _dumps(value: object) -> bytes:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def json_response(value: object, status: int = 200) -> Response:
    return Response(_dumps(value), status_code=status, media_type="application/json")
