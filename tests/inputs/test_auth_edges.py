"""Auth edges over real HTTP: strict base64url, finite NumericDate claims, string roles, the optional
lifetime / audience / issuer rules, and owner-only files in the local data folder."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from aigateway.store.usage import UsageRecord
from aigateway.usage_spool import FileSpool

from tests.support import Gateway, MakeGateway

ROUTE = "/api/ai/configurations"  # an admin route: no upstream call needed to see the verdict


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(secret: str, header: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest())


def _token(secret: str, claims_json: str, *, header: str | None = None, payload: str | None = None) -> str:
    h = header if header is not None else _b64(b'{"alg":"HS256","typ":"JWT"}')
    p = payload if payload is not None else _b64(claims_json.encode())
    return f"{h}.{p}.{_sign(secret, h, p)}"


def _status(gw: Gateway, token: str) -> int:
    return gw.client.get(ROUTE, headers={"Authorization": f"Bearer {token}"}).status_code


def _admin_claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "admin-1", "role": "project_admin", "exp": int(time.time()) + 600, **extra}


def test_a_well_formed_token_passes(gateway: Gateway) -> None:
    assert gateway.settings.jwt_secret
    assert _status(gateway, _token(gateway.settings.jwt_secret, json.dumps(_admin_claims()))) == 200


def test_base64url_spellings_other_than_the_canonical_one_are_refused(gateway: Gateway) -> None:
    secret = gateway.settings.jwt_secret
    assert secret
    good = _b64(json.dumps(_admin_claims()).encode())
    padded = good + "=" * (-len(good) % 4) if len(good) % 4 else good + "=="
    plus_slash = base64.b64encode(json.dumps(_admin_claims(note="??>>")).encode()).decode().rstrip("=")
    assert "+" in plus_slash or "/" in plus_slash
    # a payload whose last character has unused low bits set decodes to the same bytes
    raw = json.dumps(_admin_claims(pad="x")).encode()
    canonical = _b64(raw)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    tweaked = None
    if len(canonical) % 4:
        last = alphabet.index(canonical[-1])
        tweaked = canonical[:-1] + alphabet[last + 1]
        assert base64.urlsafe_b64decode(tweaked + "=" * (-len(tweaked) % 4)) == raw
    for payload in (padded, plus_slash, good + "!", " " + good, tweaked):
        if payload is None:
            continue
        assert _status(gateway, _token(secret, "", payload=payload)) == 401, payload


@pytest.mark.parametrize(
    "claims_json",
    [
        '{"sub": "a", "role": "project_admin", "exp": NaN}',
        '{"sub": "a", "role": "project_admin", "exp": Infinity}',
        '{"sub": "a", "role": "project_admin", "exp": true}',
        '{"sub": "a", "role": "project_admin", "exp": "9999999999"}',
        '{"sub": "a", "role": "project_admin", "nbf": NaN}',
        '{"sub": "a", "role": "project_admin", "nbf": -Infinity}',
        '{"sub": "a", "role": "project_admin", "nbf": false}',
        '{"sub": "a", "role": "project_admin", "iat": NaN}',
        '{"sub": "a", "role": ["project_admin"]}',
        '{"sub": "a", "role": {}}',
        '{"sub": "a", "role": []}',
        '{"sub": "a", "role": 0}',
        '{"sub": "a", "role": false}',
        '{"sub": "a", "role": ""}',
    ],
)
def test_odd_claims_are_an_invalid_token(gateway: Gateway, claims_json: str) -> None:
    assert gateway.settings.jwt_secret
    r = gateway.client.get(
        ROUTE, headers={"Authorization": f"Bearer {_token(gateway.settings.jwt_secret, claims_json)}"}
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "AUTH_UNAUTHORIZED"


def test_longest_lifetime_of_non_anon_tokens(make_gateway: MakeGateway) -> None:
    gw = make_gateway(jwt_max_lifetime_s=3600)
    secret = gw.settings.jwt_secret
    assert secret
    now = int(time.time())
    assert _status(gw, _token(secret, json.dumps(_admin_claims(iat=now, exp=now + 3000)))) == 200
    assert _status(gw, _token(secret, json.dumps(_admin_claims(iat=now, exp=now + 7200)))) == 401
    no_exp = {"sub": "admin-1", "role": "project_admin"}
    assert _status(gw, _token(secret, json.dumps(no_exp))) == 401
    assert _status(gw, _token(secret, json.dumps(_admin_claims(exp=now + 10**8)))) == 401
    # anon keys are long-lived public keys: the rule does not apply to them
    anon = _token(secret, json.dumps({"sub": "anon-1", "role": "anon", "exp": now + 10**8}))
    r = gw.client.post(
        "/api/ai/chat/completion", json={"model": "m/x", "messages": []}, headers={"Authorization": f"Bearer {anon}"}
    )
    assert r.status_code == 400 and r.json()["error"] == "AI_INVALID_MODEL"


def test_audience_and_issuer_when_configured(make_gateway: MakeGateway) -> None:
    gw = make_gateway(jwt_audience="gateway", jwt_issuer="https://auth.example")
    secret = gw.settings.jwt_secret
    assert secret
    iss = "https://auth.example"
    assert _status(gw, _token(secret, json.dumps(_admin_claims(aud="gateway", iss=iss)))) == 200
    assert _status(gw, _token(secret, json.dumps(_admin_claims(aud=["other", "gateway"], iss=iss)))) == 200
    assert _status(gw, _token(secret, json.dumps(_admin_claims(aud="other", iss=iss)))) == 401
    assert _status(gw, _token(secret, json.dumps(_admin_claims(iss=iss)))) == 401
    assert _status(gw, _token(secret, json.dumps(_admin_claims(aud="gateway")))) == 401
    assert _status(gw, _token(secret, json.dumps(_admin_claims(aud="gateway", iss="https://evil")))) == 401


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_stored_images_are_owner_only(make_gateway: MakeGateway, tmp_path: Path) -> None:
    gw = make_gateway(home=tmp_path)
    gw.enable("google/gemini-2.5-flash-image-preview", outputModality=["image", "text"])
    r = gw.client.post(
        "/api/ai/image/generation",
        json={"model": "google/gemini-2.5-flash-image-preview", "prompt": "a fox", "storage": True},
        headers=gw.user(),
    )
    assert r.status_code == 200, r.text
    folder = tmp_path / "images"
    files = list(folder.iterdir())
    assert files and _mode(folder) == 0o700
    assert all(_mode(f) == 0o600 for f in files), [oct(_mode(f)) for f in files]


def test_spooled_usage_records_are_owner_only(tmp_path: Path) -> None:
    folder = tmp_path / "usage-spool"
    record = UsageRecord(request_id="r1", model_id="m/x", kind="chat")
    asyncio.run(FileSpool(folder).put(record))
    assert _mode(folder) == 0o700
    assert [_mode(f) for f in folder.iterdir()] == [0o600]


@pytest.mark.parametrize("sub", ['"user\\ud800"', '"user\\u0000x"'])
def test_a_subject_no_row_can_hold_is_an_invalid_token(gateway: Gateway, sub: str) -> None:
    assert gateway.settings.jwt_secret
    claims = '{"sub": %s, "role": "project_admin"}' % sub  # noqa: UP031 - raw JSON escapes
    r = gateway.client.get(ROUTE, headers={"Authorization": f"Bearer {_token(gateway.settings.jwt_secret, claims)}"})
    assert r.status_code == 401, r.text
