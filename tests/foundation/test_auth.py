"""docs/api.md#authentication for every route: each kind of credential gets exactly the documented answer."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from aigateway.api.local import local_app
from aigateway.auth import Authenticator, decode_jwt, mint_jwt

from tests.support import Gateway, MakeGateway

GENERATION = {"/api/ai/chat/completion", "/api/ai/image/generation", "/api/ai/embeddings"}
OPEN = {"/api/ai/health", "/openapi.json", "/docs", "/docs/oauth2-redirect"}


BATCHES = ("/api/ai/batches", "/api/ai/v1/batches", "/api/ai/v1/files")  # signed-in users, not anon


def _is_generation(path: str) -> bool:
    return path in GENERATION or path.startswith("/api/ai/v1/")


def _routes(gw: Gateway) -> list[tuple[str, str]]:
    """Every documented operation, with path parameters filled in."""
    out: list[tuple[str, str]] = []
    for path, ops in local_app(gw.services).openapi()["paths"].items():
        if path in OPEN or "/images/files/" in path:
            continue
        concrete = re.sub(r"\{[^}]*[iI]d\}", str(uuid.uuid4()), path)
        out.extend((method.upper(), concrete) for method in ops if method in ("get", "post", "put", "patch", "delete"))
    return out


def _credentials(gw: Gateway) -> dict[str, dict[str, str]]:
    secret = gw.settings.jwt_secret
    assert secret
    expired = mint_jwt(secret, {"sub": "u", "role": "authenticated", "exp": int(time.time()) - 3600})
    forged = mint_jwt("not-the-secret", {"sub": "u", "role": "project_admin"})
    return {
        "none": {},
        "malformed": {"Authorization": "Basic dXNlcjpwYXNz"},
        "empty_bearer": {"Authorization": "Bearer"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "wrong_signature": {"Authorization": f"Bearer {forged}"},
        "garbage_jwt": {"Authorization": "Bearer not.a.jwt"},
        "anon": {"Authorization": f"Bearer {gw.token('anon', 'anon-sub')}"},
        "authenticated": {"Authorization": f"Bearer {gw.token('authenticated')}"},
        "no_role_claim": {"Authorization": f"Bearer {gw.token(None)}"},
        "admin_jwt": {"Authorization": f"Bearer {gw.token('project_admin')}"},
        "right_key": {"Authorization": f"Bearer {gw.admin_key}"},
        "wrong_key": {"Authorization": "Bearer ik_" + "0" * 64},
        "x_api_key": {"x-api-key": gw.admin_key},
        "wrong_x_api_key": {"x-api-key": "ik_wrong"},
    }


def _expected(cred: str, generation: bool, batch: bool = False) -> tuple[int, str] | None:
    """(status, code) the contract prescribes, or None when auth must pass."""
    if batch and cred == "anon":
        return (403, "AUTH_UNAUTHORIZED")
    if batch and cred in ("authenticated", "no_role_claim"):
        return None
    if cred in ("none", "malformed", "empty_bearer"):
        return (401, "AUTH_INVALID_CREDENTIALS")
    if cred in ("expired", "wrong_signature", "garbage_jwt"):
        return (401, "AUTH_UNAUTHORIZED")
    if cred in ("wrong_key", "wrong_x_api_key"):
        return (401, "AUTH_INVALID_API_KEY")
    if cred in ("anon", "authenticated", "no_role_claim"):
        return None if generation else (403, "AUTH_UNAUTHORIZED")
    return None


def _code(body: dict[str, Any]) -> Any:
    """The contract code: `error` itself, or `error.code` on the OpenAI-compatible surface."""
    err = body.get("error")
    return err.get("code") if isinstance(err, dict) else err


def test_every_route_every_credential(gateway: Gateway) -> None:
    creds = _credentials(gateway)
    routes = _routes(gateway)
    assert len(routes) >= 8
    failures = []
    for method, path in routes:
        for name, headers in creds.items():
            kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
            r = gateway.client.request(method, path, headers=headers, **kwargs)
            want = _expected(name, _is_generation(path), path.startswith(BATCHES))
            if want is None:
                if r.status_code in (401, 403) or r.status_code >= 500:
                    failures.append((method, path, name, r.status_code, r.text[:120]))
            elif (r.status_code, _code(r.json())) != want:
                failures.append((method, path, name, r.status_code, r.text[:120]))
    assert not failures, failures


def test_messages_match_the_spec(gateway: Gateway) -> None:
    c = gateway.client
    r = c.post("/api/ai/chat/completion", json={})
    assert r.json() == {
        "error": "AUTH_INVALID_CREDENTIALS",
        "message": "No token provided",
        "statusCode": 401,
        "nextActions": "Check the token is valid or login to get a new token.",
    }
    r = c.get("/api/ai/configurations")
    assert r.json()["message"] == "No admin token provided"
    r = c.get("/api/ai/configurations", headers=gateway.user())
    assert r.status_code == 403 and r.json()["message"] == "Admin access required"
    r = c.get("/api/ai/configurations", headers={"Authorization": "Bearer ik_nope"})
    assert r.json()["message"] == "Invalid API key"
    r = c.get("/api/ai/configurations", headers={"Authorization": "Bearer a.b.c"})
    assert r.json() == {"error": "AUTH_UNAUTHORIZED", "message": "Invalid token", "statusCode": 401}


def test_anon_can_be_switched_off(make_gateway: MakeGateway) -> None:
    gw = make_gateway(allow_anon=False)
    r = gw.client.post("/api/ai/chat/completion", json={}, headers=gw.user("anon", "a"))
    assert r.status_code == 403 and r.json()["error"] == "AUTH_UNAUTHORIZED"


def test_admin_key_without_prefix_is_normalised_and_only_its_digest_is_kept() -> None:
    auth = Authenticator("s3cret", "abc123")
    assert auth.admin("Bearer ik_abc123", None).via_api_key
    assert "abc123" not in repr(vars(auth))


@pytest.mark.parametrize("alg_header", ["eyJhbGciOiJub25lIn0", "eyJhbGciOiJIUzUxMiJ9"])
def test_only_hs256_is_accepted(alg_header: str) -> None:
    good = mint_jwt("k", {"sub": "x"})
    _, payload, sig = good.split(".")
    with pytest.raises(ValueError):
        decode_jwt(f"{alg_header}.{payload}.{sig}", "k")
    with pytest.raises(ValueError):
        decode_jwt(f"{alg_header}.{payload}.", "k")
    assert decode_jwt(good, "k")["sub"] == "x"


def test_unknown_role_is_an_invalid_token(gateway: Gateway) -> None:
    r = gateway.client.get("/api/ai/configurations", headers=gateway.user(role="service_role"))
    assert r.status_code == 401 and r.json()["error"] == "AUTH_UNAUTHORIZED"
