"""Schemathesis against the OpenAPI document, in process: no 5xx, every status and body as documented."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service.conftest import ADMIN

READER = "rw_test_read_only_key"  # a read-scope key: every admin or decide operation must answer 401/403, not 5xx
EXAMPLES = int(os.environ.get("REDWOOD_FUZZ_EXAMPLES", "6"))  # per operation and mode; raise for a longer fuzz
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, policy_dir):
    from api.service import Settings, create_app

    db = tmp_path_factory.mktemp("fuzz") / "r.db"
    app = create_app(
        Settings(
            db_url=f"sqlite:///{db}", policy_dir=policy_dir, secret="s", bootstrap_key=ADMIN, max_body_bytes=256 * 1024
        )
    )
    app.state.keys.create("reader", ["read"], key=READER)
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", app)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES, deterministic=True
    )
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES)
def test_openapi_conformance(case):
    case.call_and_validate(headers={"X-API-Key": ADMIN}, checks=CHECKS)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES)
def test_openapi_conformance_with_a_read_only_key(case):
    case.call_and_validate(headers={"X-API-Key": READER}, checks=CHECKS)
