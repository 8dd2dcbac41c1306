"""Wrapper faults reach callers as actionable 503s: KMS errors, moved ciphertexts, wrong wrapper."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aigateway.credentials import KeyResolver
from aigateway.crypto import KmsKeyWrapper, LocalKeyWrapper, WrapperError, key_wrapper_for
from aigateway.db import Database
from aigateway.errors import GatewayError
from aigateway.settings import Settings
from botocore.stub import Stubber

from tests.support import SQL

from .conftest import ENV_KEY, Gw, Sim, encodings, models_key, set_key

KEY = "sk-or-v1-fault-test-5555666677778888"
ROUTE = "/api/ai/gateway/config"

_DECRYPT_FAULTS = [
    ("DisabledException", "is disabled"),
    ("NotFoundException", "was not found"),
    ("AccessDeniedException", "not allowed to use the AWS KMS key"),
    ("KMSInvalidStateException", "not usable in its current state"),
    ("ThrottlingException", "throttling"),
    ("InvalidCiphertextException", "stored for another deployment or key"),
]


def _assert_503(r: Any, message_part: str) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error"] == "SERVICE_UNAVAILABLE" and body["statusCode"] == 503
    assert message_part in body["message"] and body["nextActions"]
    assert not any(form in r.text for form in encodings(KEY))


def test_kms_faults_on_decrypt_are_503s_and_never_fall_through(
    make_gw: Callable[..., Gw], kms_key_id: str, sim: Sim
) -> None:
    gw = make_gw(kms_key_id=kms_key_id, master_key=None)
    assert set_key(gw, KEY).status_code == 200
    client = boto3.client("kms")
    stub = Stubber(client)
    for code, _ in _DECRYPT_FAULTS:
        stub.add_client_error("decrypt", service_error_code=code, service_message="aws detail", http_status_code=400)
    stub.activate()
    gw.services.__dict__["key_wrapper"] = KmsKeyWrapper(kms_key_id, client=client)  # before the next request
    sim.reset_mark()
    for _code, message_part in _DECRYPT_FAULTS:
        _assert_503(gw.client.get("/api/ai/models", headers=gw.admin()), message_part)
    stub.assert_no_pending_responses()
    assert sim.keys() == [], "a stored key that cannot be decrypted never silently becomes the env key"
    status = gw.client.get(ROUTE, headers=gw.admin()).json()
    assert status == {"keySource": "byok", "hasByokKey": True, "maskedKey": "sk-o****8888"}, "GET needs no KMS"


def test_kms_fault_on_encrypt_keeps_the_old_key(
    make_gw: Callable[..., Gw], kms_key_id: str, sim: Sim, sql: SQL
) -> None:
    gw = make_gw(kms_key_id=kms_key_id, master_key=None)
    assert set_key(gw, KEY).status_code == 200
    client = boto3.client("kms")
    stub = Stubber(client)
    stub.add_client_error("encrypt", service_error_code="AccessDeniedException", http_status_code=400)
    stub.activate()
    gw.services.__dict__["key_wrapper"] = KmsKeyWrapper(kms_key_id, client=client)
    r = set_key(gw, "sk-or-v1-new-key-0000")
    _assert_503(r, "not allowed to use the AWS KMS key")
    assert "kms:Encrypt" in r.json()["nextActions"]
    assert [x["masked_value"] for x in sql("SELECT masked_value FROM {s}.secrets")] == ["sk-o****8888"]
    assert [x["action"] for x in sql("SELECT action FROM {s}.audit_logs")] == ["SET_BYOK_OPENROUTER_KEY"]


@pytest.mark.parametrize("wrapping", ["local", "kms"])
def test_ciphertext_moved_to_another_deployment_fails_clearly(
    make_gw: Callable[..., Gw], aws: None, sim: Sim, wrapping: str
) -> None:
    """Same database, same master key / KMS key, other deployment id: the context no longer matches."""
    extra: dict[str, Any] = {}
    if wrapping == "kms":
        extra = {"kms_key_id": boto3.client("kms").create_key()["KeyMetadata"]["KeyId"], "master_key": None}
    home = make_gw(**extra)
    assert set_key(home, KEY).status_code == 200
    assert models_key(home, sim) == KEY
    elsewhere = make_gw(deployment_id="another-deployment", **extra)
    sim.reset_mark()
    r = elsewhere.client.get("/api/ai/models", headers=elsewhere.admin())
    _assert_503(r, "cannot be decrypted: it was stored for another deployment or key")
    assert "Set the OpenRouter key again" in r.json()["nextActions"]
    assert sim.keys() == []
    assert set_key(elsewhere, KEY).status_code == 200, "setting it again re-binds it to this deployment"
    assert models_key(elsewhere, sim) == KEY


def test_key_stored_by_another_wrapper_is_reported(make_gw: Callable[..., Gw], kms_key_id: str) -> None:
    local = make_gw()
    assert set_key(local, KEY).status_code == 200
    on_kms = make_gw(kms_key_id=kms_key_id, master_key=None)
    r = on_kms.client.get("/api/ai/models", headers=on_kms.admin())
    _assert_503(r, "encrypted by the 'local' key wrapper, but this deployment uses 'kms'")


def test_on_aws_without_kms_is_a_503_for_the_key_routes(make_gw: Callable[..., Gw], sim: Sim) -> None:
    gw = make_gw(on_aws=True, kms_key_id=None)
    r = set_key(gw, KEY)
    assert r.status_code == 503 and "KMS_KEY_ID is not set" in r.json()["message"]
    assert gw.client.get(ROUTE, headers=gw.admin()).json()["keySource"] == "env", "no BYOK row: no wrapper needed"
    assert models_key(gw, sim) == ENV_KEY


# -- the resolver directly ----------------------------------------------------------------------


async def test_resolve_raises_actionable_503s(db: Database, base_settings: Settings) -> None:
    master = LocalKeyWrapper(base64.b64decode(base_settings.master_key or ""))
    writer = KeyResolver(base_settings, db, lambda: master)

    calls: list[int] = []

    def refusing_factory() -> Any:
        calls.append(1)
        return key_wrapper_for(Settings(on_aws=True))

    lazy = KeyResolver(base_settings, db, refusing_factory)
    assert (await lazy.resolve()).source == "env" and calls == [], "no BYOK row: the wrapper is never built"

    await writer.set_byok(KEY, actor="test", ip=None)
    resolved = await writer.resolve()
    assert (resolved.source, resolved.key) == ("byok", KEY)
    assert KEY not in repr(resolved) and KEY not in str(resolved) and "sk-o****8888" in repr(resolved)

    lazy.invalidate()
    with pytest.raises(WrapperError) as exc:
        await lazy.resolve()
    assert exc.value.status == 503 and "KMS_KEY_ID is not set" in exc.value.message and calls == [1]

    other_master = KeyResolver(base_settings, db, lambda: LocalKeyWrapper(secrets.token_bytes(32)))
    with pytest.raises(GatewayError) as err:
        await other_master.resolve()
    assert err.value.status == 503 and "stored for another deployment or key" in err.value.message
    assert not any(form in str(err.value.body()) for form in encodings(KEY))
