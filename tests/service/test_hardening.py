"""Issue 20: the service's defect list (paths, media types, JSON errors, times, OpenAPI bounds, admin keys,
Allow headers, bounded work per request, offline docs). Each test failed before its fix."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import ADMIN

H = {"X-API-Key": ADMIN}
STATE = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 20]


@pytest.fixture
def client(app_factory, tmp_path):
    with TestClient(app_factory(f"sqlite:///{tmp_path / 'r.db'}")) as c:
        yield c


def _err(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "field"}
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


def _iso(value: str) -> datetime:
    assert isinstance(value, str) and value.endswith("Z"), value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    assert abs(parsed.timestamp() - time.time()) < 3600
    return parsed


# ---------------------------------------------------------------------------------------- 1. paths
@pytest.mark.parametrize("path", [".", "./", "./.", ".//."])
def test_policy_dir_itself_is_a_clean_4xx(client, path):
    r = client.post("/v1/policies", json={"path": path}, headers=H)
    assert 400 <= r.status_code < 500, r.text
    _err(r, r.status_code)
    assert client.get("/v1/health").status_code == 200  # the connection and the server are fine


def test_policy_registration_is_normalised_and_idempotent(client):
    first = client.post("/v1/policies", json={"path": "cap10"}, headers=H)
    assert first.status_code == 201, first.text
    pid = first.json()["id"]
    assert first.json()["path"] == "cap10"
    for spelling in ["cap10", "cap10/", "cap10/.", "./cap10", "./cap10/", ".//cap10//."]:
        again = client.post("/v1/policies", json={"path": spelling}, headers=H)
        assert again.status_code == 200, (spelling, again.text)
        assert again.json()["id"] == pid and again.json()["path"] == "cap10"
    assert [p["id"] for p in client.get("/v1/policies", headers=H).json()["policies"]] == [pid]
    assert client.delete(f"/v1/policies/{pid}", headers=H).status_code == 204
    fresh = client.post("/v1/policies", json={"path": "./cap10"}, headers=H)
    assert fresh.status_code == 201 and fresh.json()["id"] != pid  # deleted policies are not revived


# ------------------------------------------------------------------------------- 2. media type, JSON
def test_wrong_content_type_is_415(client):
    for url in ["/v1/keys", "/v1/policies", "/v1/sessions"]:
        r = client.post(url, content=b'{"name": "x", "scopes": ["read"]}', headers=H | {"content-type": "text/plain"})
        err = _err(r, 415, "unsupported_media_type")
        assert "application/json" in err["message"] and err["field"] == "Content-Type"
    r = client.post("/v1/keys", content=b"", headers=H | {"content-type": "text/plain"})
    _err(r, 415, "unsupported_media_type")
    ok = client.post(
        "/v1/keys",
        content=b'{"name": "x", "scopes": ["read"]}',
        headers=H | {"content-type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": ' + b"[" * 1500 + b"]" * 1500 + b', "scopes": ["read"]}',
        b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"name": "\xff\xfe", "scopes": ["read"]}',
        b'\xff{"name": "x"}',
    ],
)
def test_deep_nesting_and_bad_utf8_are_invalid_json(client, raw):
    r = client.post("/v1/keys", content=raw, headers=H | {"content-type": "application/json"})
    err = _err(r, 400, "invalid_json")
    assert err["field"] == "body"


# ------------------------------------------------------------------------------------- 3. ISO times
def test_created_at_is_iso_8601_utc(client):
    created = client.post("/v1/keys", json={"name": "k", "scopes": ["read"]}, headers=H).json()
    _iso(created["info"]["created_at"])
    for k in client.get("/v1/keys", headers=H).json()["keys"]:
        _iso(k["created_at"])
    policy = client.post("/v1/policies", json={"path": "cap10"}, headers=H).json()
    _iso(policy["created_at"])
    _iso(client.get(f"/v1/policies/{policy['id']}", headers=H).json()["created_at"])
    d = client.post(
        f"/v1/policies/{policy['id']}/decisions",
        json={"state": STATE, "selector": "greedy"},
        headers=H | {"Idempotency-Key": "a"},
    )
    _iso(d.json()["created_at"])
    replay = client.post(
        f"/v1/policies/{policy['id']}/decisions",
        json={"state": STATE, "selector": "greedy"},
        headers=H | {"Idempotency-Key": "a"},
    )
    assert replay.status_code == 200 and replay.json()["created_at"] == d.json()["created_at"]
    assert client.get(f"/v1/decisions/{d.json()['id']}", headers=H).json()["created_at"] == d.json()["created_at"]
    s = client.post(
        "/v1/sessions", json={"kind": "cucb", "n_arms": 3, "constraint": {"type": "top_k", "k": 1}}, headers=H
    ).json()
    _iso(s["created_at"])
    sel = client.post(f"/v1/sessions/{s['id']}/select", json={}, headers=H).json()
    _iso(sel["created_at"])
    fb = client.post(f"/v1/sessions/{s['id']}/decisions/{sel['id']}/feedback", json={"reward": 0.5}, headers=H)
    _iso(fb.json()["created_at"])
    again = client.post(f"/v1/sessions/{s['id']}/decisions/{sel['id']}/feedback", json={"reward": 0.5}, headers=H)
    assert again.status_code == 200 and again.json()["created_at"] == fb.json()["created_at"]
    _iso(client.get(f"/v1/sessions/{s['id']}", headers=H).json()["created_at"])
    schema = client.get("/v1/openapi.json").json()["components"]["schemas"]
    assert schema["KeyInfo"]["properties"]["created_at"]["type"] == "string"
    assert schema["KeyInfo"]["properties"]["created_at"]["format"] == "date-time"


# ------------------------------------------------------------------------------------ 4. long numbers
@pytest.mark.parametrize("digits", [1000, 5000, 100_000])
def test_long_integer_is_out_of_range_naming_the_field(client, digits):
    raw = b'{"name": "k", "scopes": ["read"], "extra": {"deep": [0, -1' + b"0" * digits + b"]}}"
    r = client.post("/v1/keys", content=raw, headers=H | {"content-type": "application/json"})
    err = _err(r, 422)
    assert err["field"] == "extra.deep.1"
    assert "out of range" in err["message"] and "set_int_max_str_digits" not in err["message"]
    pid = client.post("/v1/policies", json={"path": "cap10"}, headers=H).json()["id"]
    raw = b'{"state": [0, 1' + b"2" * digits + b"]}"
    r = client.post(f"/v1/policies/{pid}/decisions", content=raw, headers=H | {"content-type": "application/json"})
    err = _err(r, 422)
    assert err["field"] == "state.1" and "out of range" in err["message"]


# ----------------------------------------------------------------------------------- 6. OpenAPI bounds
def test_openapi_bounds_are_json_schema_keywords(client):
    doc = client.get("/v1/openapi.json").json()
    found: list[str] = []

    def walk(node, path):
        if isinstance(node, dict):
            found.extend(f"{path}/{k}" for k in ("gt", "ge", "lt", "le") if k in node)
            for k, v in node.items():
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")

    walk(doc, "")
    assert found == []
    schemas = doc["components"]["schemas"]
    deadline = schemas["DecisionRequest"]["properties"]["deadline_seconds"]["anyOf"][0]
    assert deadline == {"type": "number", "exclusiveMinimum": 0, "maximum": 600}
    assert schemas["WhittleSessionCreate"]["properties"]["discount"]["exclusiveMinimum"] == 0
    assert schemas["Knapsack"]["properties"]["capacity"]["minimum"] == 0
    assert schemas["ThompsonSessionCreate"]["properties"]["sigma"]["maximum"] == 1e6


def test_bounded_numbers_still_strict(client):
    for bad in [True, "1", 0, -1, 601]:
        r = client.post(
            "/v1/sessions",
            json={
                "kind": "cucb",
                "n_arms": 3,
                "constraint": {"type": "top_k", "k": 1},
                "alpha": bad if bad != 0 else -0.5,
            },
            headers=H,
        )
        _err(r, 422)
    ok = client.post(
        "/v1/sessions",
        json={"kind": "cucb", "n_arms": 3, "constraint": {"type": "top_k", "k": 1}, "alpha": 2},
        headers=H,
    )
    assert ok.status_code == 201, ok.text


# --------------------------------------------------------------------------------------- 7. admin keys
def test_admin_cannot_lock_every_admin_out(client):
    client.app.state.keys.ttl = 0.0
    boot = next(k for k in client.get("/v1/keys", headers=H).json()["keys"] if k["name"] == "bootstrap")
    err = _err(client.delete(f"/v1/keys/{boot['id']}", headers=H), 409)
    assert "itself" in err["message"] and err["field"] == "key_id"
    second = client.post("/v1/keys", json={"name": "second admin", "scopes": ["admin"]}, headers=H).json()
    h2 = {"X-API-Key": second["key"]}
    _err(client.delete(f"/v1/keys/{second['info']['id']}", headers=h2), 409)
    assert client.delete(f"/v1/keys/{boot['id']}", headers=h2).status_code == 204  # another admin remains
    _err(client.get("/v1/keys", headers=H), 401)
    assert client.get("/v1/keys", headers=h2).status_code == 200
    from api.service.errors import ApiError

    with pytest.raises(ApiError) as exc:  # the last admin key, whoever asks (e.g. the command line)
        client.app.state.keys.revoke(second["info"]["id"])
    assert exc.value.status == 409 and "last admin" in exc.value.message
    read = client.post("/v1/keys", json={"name": "reader", "scopes": ["read"]}, headers=h2).json()
    assert client.delete(f"/v1/keys/{read['info']['id']}", headers=h2).status_code == 204


@pytest.mark.parametrize(
    "name",
    [
        "a\x00b",
        "evil\u202etxt.exe",
        "zero\u200bwidth",
        "line\nbreak",
        "tab\t",
        "para\u2029",
        "\ufeffbom",
        "   ",
        "x" * 201,
        "\udc80",
    ],
)
def test_key_names_must_be_printable(client, name):
    r = client.post(
        "/v1/keys",
        content=json.dumps({"name": name, "scopes": ["read"]}).encode(),
        headers=H | {"content-type": "application/json"},
    )
    err = _err(r, 422)
    assert err["field"] == "name"


def test_printable_unicode_key_names_accepted(client):
    r = client.post("/v1/keys", json={"name": "Zoë's key: 東京 / ops-1", "scopes": ["read"]}, headers=H)
    assert r.status_code == 201 and r.json()["info"]["name"] == "Zoë's key: 東京 / ops-1"


# ------------------------------------------------------------------------------------- 8. Allow header
def test_405_allow_lists_every_method(client):
    r = client.options("/v1/keys", headers=H)
    _err(r, 405, "method_not_allowed")
    assert set(re.split(r",\s*", r.headers["allow"])) == {"GET", "POST"}
    r = client.put("/v1/policies/abc", headers=H)
    assert set(re.split(r",\s*", r.headers["allow"])) == {"GET", "DELETE"}
    r = client.patch("/v1/sessions/abc/select", headers=H)
    assert set(re.split(r",\s*", r.headers["allow"])) == {"POST"}


# ------------------------------------------------------------------------------------- 11. offline docs
def test_docs_page_is_served_offline(client):
    r = client.get("/v1/docs")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", r.text)
    assert urls, r.text
    assert not re.search(r"https?://", r.text), [u for u in urls if "://" in u]
    js = next(u for u in urls if u.endswith("swagger-ui-bundle.js"))
    css = next(u for u in urls if u.endswith(".css"))
    assert js.startswith("/v1/docs/static/") and css.startswith("/v1/docs/static/")
    got = client.get(js)
    assert got.status_code == 200 and len(got.content) > 100_000 and "javascript" in got.headers["content-type"]
    assert client.get(css).status_code == 200
    assert "/v1/openapi.json" in urls
    assert client.get("/v1/docs/static/nope.js").status_code == 404
