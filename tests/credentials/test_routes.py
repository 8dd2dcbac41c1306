"""GET/POST/DELETE /api/ai/gateway/config and GET /api/ai/credits (docs/api.md#upstream-key-and-credits)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from aigateway.crypto import LocalKeyWrapper, byok_context
from aigateway.settings import Settings

from tests.support import SQL

from .conftest import ENV_KEY, Gw, Sim, create_cloud_secret, free_port_url, models_key, set_key

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"
ROUTE = "/api/ai/gateway/config"


def _status(gw: Gw) -> dict[str, Any]:
    r = gw.client.get(ROUTE, headers=gw.admin())
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _audit(gw: Gw) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = gw.client.get("/api/ai/audit", headers=gw.admin()).json()["records"]
    return records


def test_get_reports_each_key_source(make_gw: Callable[..., Gw], aws: None) -> None:
    assert _status(make_gw(openrouter_api_key=None)) == {"keySource": "unconfigured", "hasByokKey": False}
    assert _status(make_gw()) == {"keySource": "env", "hasByokKey": False}
    cloud = make_gw(openrouter_api_key=None, openrouter_cloud_key_secret=create_cloud_secret("sk-or-v1-cloud-k"))
    assert _status(cloud) == {"keySource": "cloud", "hasByokKey": False}
    assert set_key(cloud, KEY).status_code == 200
    assert _status(cloud) == {"keySource": "byok", "hasByokKey": True, "maskedKey": "sk-o****cdef"}


def test_post_validates_live_stores_only_ciphertext_and_audits(gateway_with_keys: Gw, sim: Sim, sql: SQL) -> None:
    gw = gateway_with_keys
    who = gw.user(role="project_admin", sub="admin-1", email="admin@example.com")
    r = gw.client.post(ROUTE, json={"apiKey": f"  {KEY}\n", "extra": 1}, headers=who)
    assert r.status_code == 200 and r.json() == {"message": "OpenRouter API key configured successfully"}
    assert sim.keys("/key") == [KEY], "validated live upstream, whitespace stripped"
    assert _status(gw) == {"keySource": "byok", "hasByokKey": True, "maskedKey": "sk-o****cdef"}

    rows = sql("SELECT key, value_ciphertext, wrapper, masked_value, is_active FROM {s}.secrets")
    assert len(rows) == 1
    row = rows[0]
    assert (row["key"], row["wrapper"], row["masked_value"], row["is_active"]) == (
        "AI_GATEWAY_OPENROUTER_KEY",
        "local",
        "sk-o****cdef",
        True,
    )
    ciphertext = bytes(row["value_ciphertext"])
    assert KEY.encode() not in ciphertext
    assert gw.settings.master_key
    wrapper = LocalKeyWrapper(base64.b64decode(gw.settings.master_key))
    assert wrapper.unwrap(ciphertext, byok_context(gw.settings)) == KEY.encode(), "bound to this deployment"

    [record] = _audit(gw)
    assert record["action"] == "SET_BYOK_OPENROUTER_KEY" and record["actor"] == "admin@example.com"
    assert record["details"] == {"keySource": "byok"} and record["ipAddress"] == "127.0.0.1"


def test_post_refused_key_is_400_and_stores_nothing(gateway_with_keys: Gw, sql: SQL) -> None:
    gw = gateway_with_keys
    r = set_key(gw, "sk-or-v1-revoked-0000")
    assert r.status_code == 400
    assert r.json() == {
        "error": "AI_INVALID_API_KEY",
        "message": "Invalid OpenRouter API key. Please check the key and try again.",
        "statusCode": 400,
    }
    assert sql("SELECT 1 FROM {s}.secrets") == [] and sql("SELECT 1 FROM {s}.audit_logs") == []
    assert _status(gw)["keySource"] == "env"


def test_post_with_upstream_unreachable_is_502(make_gw: Callable[..., Gw], sql: SQL) -> None:
    gw = make_gw(openrouter_base_url=free_port_url())
    r = set_key(gw, KEY)
    assert r.status_code == 502
    assert r.json() == {
        "error": "AI_UPSTREAM_UNAVAILABLE",
        "message": "Could not reach OpenRouter to validate the key. Please try again later.",
        "statusCode": 502,
    }
    assert sql("SELECT 1 FROM {s}.secrets") == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"apiKey": ""}, "Validation error: apiKey: API key is required"),
        ({"apiKey": "   "}, "Validation error: apiKey: API key is required"),
        ({}, "Validation error: apiKey: API key is required"),
        ({"apiKey": None}, "Validation error: apiKey: API key is required"),
        ({"apiKey": 12345}, "Validation error: apiKey: API key must be a string"),
        ({"apiKey": "sk-" + "x" * 600}, "Validation error: apiKey: API key must be at most 512 characters"),
        (
            {"apiKey": "sk-or v1"},
            "Validation error: apiKey: API key must not contain spaces or control characters",
        ),
        (
            {"apiKey": "sk-or\r\nX-Evil: 1"},
            "Validation error: apiKey: API key must not contain spaces or control characters",
        ),
    ],
)
def test_post_invalid_body_is_400(gateway_with_keys: Gw, sim: Sim, body: dict[str, Any], message: str) -> None:
    r = gateway_with_keys.client.post(ROUTE, json=body, headers=gateway_with_keys.admin())
    assert r.status_code == 400
    assert r.json() == {"error": "INVALID_INPUT", "message": message, "statusCode": 400}
    assert sim.keys("/key") == [], "nothing reached the upstream"


def test_delete_soft_deactivates_then_404(gateway_with_keys: Gw, sim: Sim, sql: SQL) -> None:
    gw = gateway_with_keys
    assert set_key(gw, KEY).status_code == 200
    r = gw.client.delete(ROUTE, headers=gw.admin())
    assert r.status_code == 200 and r.json() == {"message": "OpenRouter API key removed successfully"}
    assert _status(gw) == {"keySource": "env", "hasByokKey": False}
    assert models_key(gw, sim) == ENV_KEY

    [row] = sql("SELECT is_active, masked_value, octet_length(value_ciphertext) AS n FROM {s}.secrets")
    assert row == {"is_active": False, "masked_value": "sk-o****cdef", "n": 0}, "row kept, ciphertext erased"

    r = gw.client.delete(ROUTE, headers=gw.admin())
    assert r.status_code == 404
    assert r.json() == {"error": "NOT_FOUND", "message": "No BYOK key configured", "statusCode": 404}
    actions = [a["action"] for a in _audit(gw)]
    assert actions == ["REMOVE_BYOK_OPENROUTER_KEY", "SET_BYOK_OPENROUTER_KEY"]
    assert all(a["details"] == {"keySource": "byok"} for a in _audit(gw))

    assert set_key(gw, KEY).status_code == 200, "a removed key can be set again"
    assert _status(gw)["keySource"] == "byok" and models_key(gw, sim) == KEY


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", ROUTE), ("post", ROUTE), ("delete", ROUTE), ("get", "/api/ai/credits")],
)
def test_routes_need_an_admin(gateway_with_keys: Gw, sim: Sim, method: str, path: str) -> None:
    gw = gateway_with_keys
    kwargs: dict[str, Any] = {"json": {"apiKey": KEY}} if method == "post" else {}
    r = gw.client.request(method, path, **kwargs)
    assert r.status_code == 401 and r.json()["error"] == "AUTH_INVALID_CREDENTIALS"
    r = gw.client.request(method, path, headers=gw.user(), **kwargs)
    assert r.status_code == 403 and r.json()["error"] == "AUTH_UNAUTHORIZED"
    r = gw.client.request(method, path, headers={"Authorization": "Bearer ik_" + "0" * 64}, **kwargs)
    assert r.status_code == 401 and r.json()["error"] == "AUTH_INVALID_API_KEY"
    assert sim.keys("/key") == [], "unauthenticated calls never reach the upstream"
    r = gw.client.request(method, path, headers=gw.user(role="project_admin"), **kwargs)
    assert r.status_code in (200, 404), r.text


def test_credits_of_the_active_key(make_gw: Callable[..., Gw], sim: Sim) -> None:
    gw = make_gw()
    r = gw.client.get("/api/ai/credits", headers=gw.admin())
    assert r.status_code == 200
    body = r.json()
    assert (
        set(body) == {"usage", "limit", "remaining", "credits"} and body["limit"] is None and body["remaining"] is None
    )
    assert isinstance(body["usage"], float)
    assert body["credits"] == round(100.0 - body["usage"], 10)  # no key limit: the account's balance
    assert sim.keys("/key") == [ENV_KEY] and sim.keys("/credits") == [ENV_KEY]

    assert set_key(gw, "sk-or-v1-nocredit-abcdef").status_code == 200
    r = gw.client.get("/api/ai/credits", headers=gw.admin())
    assert r.json() == {"usage": 1.0, "limit": 1.0, "remaining": 0.0, "credits": 0.0}

    # A key that may not read the account's balance: the answer stands, `credits` unknown.
    assert set_key(gw, "sk-or-v1-noaccount-abcdef").status_code == 200
    r = gw.client.get("/api/ai/credits", headers=gw.admin())
    assert r.status_code == 200 and r.json()["credits"] is None and r.json()["limit"] is None

    bare = make_gw(openrouter_api_key=None)
    bare.client.delete(ROUTE, headers=bare.admin())
    r = bare.client.get("/api/ai/credits", headers=bare.admin())
    assert r.status_code == 503 and r.json()["error"] == "AI_NOT_CONFIGURED"
    assert "POST /api/ai/gateway/config" in r.json()["nextActions"]
    assert "OPENROUTER_CLOUD_KEY_SECRET" in r.json()["nextActions"]
    assert "OPENROUTER_API_KEY" in r.json()["nextActions"]


def test_kms_deployment_round_trip(make_gw: Callable[..., Gw], kms_key_id: str, sim: Sim, sql: SQL) -> None:
    """On a KMS deployment the key is stored as a KMS ciphertext and decrypted for upstream calls.

    Through boto3 (moto in this process); on Lambda the same calls are signed by aigateway.aws,
    which tests/lambda_runtime exercises against moto's server."""
    gw = make_gw(kms_key_id=kms_key_id, master_key=None)
    assert set_key(gw, KEY).status_code == 200
    [row] = sql("SELECT wrapper, value_ciphertext FROM {s}.secrets")
    assert row["wrapper"] == "kms" and KEY.encode() not in bytes(row["value_ciphertext"])
    assert models_key(gw, sim) == KEY


@pytest.fixture
def gateway_with_keys(make_gw: Callable[..., Gw]) -> Gw:
    return make_gw()


def test_settings_default_cache_is_at_most_five_minutes() -> None:
    assert Settings().key_cache_ttl_s <= 300
    assert Settings.from_env({"KEY_CACHE_TTL_S": "9999"}).key_cache_ttl_s == 300
