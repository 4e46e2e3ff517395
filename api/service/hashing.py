"""Canonical request hashes (idempotency: same key + same body must mean the same request)."""

from __future__ import annotations

import hashlib
import json


def request_hash(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
