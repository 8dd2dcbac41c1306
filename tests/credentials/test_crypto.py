"""Key wrapping: local AES-256-GCM and AWS KMS (moto), context binding, faults, configuration."""

from __future__ import annotations

import base64
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest
from aigateway.crypto import (
    BYOK_PURPOSE,
    KmsKeyWrapper,
    LocalKeyWrapper,
    WrapperError,
    byok_context,
    key_wrapper_for,
)
from aigateway.settings import Settings
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from .conftest import encodings

PLAIN = b"sk-or-v1-" + secrets.token_hex(24).encode()
CTX = {"deployment": "test", "purpose": BYOK_PURPOSE}


def _local() -> LocalKeyWrapper:
    return LocalKeyWrapper(secrets.token_bytes(32))


def _assert_mismatch(exc: pytest.ExceptionInfo[WrapperError]) -> None:
    err = exc.value
    assert (err.status, err.code, err.reason) == (503, "SERVICE_UNAVAILABLE", "mismatch")
    assert "stored for another deployment or key" in err.message
    assert err.next_actions and "Set the OpenRouter key again" in err.next_actions
    assert not any(form in str(err.body()) for form in encodings(PLAIN.decode()))


def test_local_round_trip_and_format() -> None:
    w = _local()
    ct = w.wrap(PLAIN, CTX)
    assert w.name == "local"
    assert ct[0] == 1 and len(ct) == 1 + 12 + len(PLAIN) + 16
    assert PLAIN not in ct
    assert w.unwrap(ct, CTX) == PLAIN
    assert w.wrap(PLAIN, CTX)[1:13] != ct[1:13], "a fresh random nonce per wrap"
    reordered = {"purpose": BYOK_PURPOSE, "deployment": "test"}
    assert w.unwrap(ct, reordered) == PLAIN, "the context is canonical, not order-sensitive"


@pytest.mark.parametrize("where", ["version", "nonce", "body", "tag", "truncated"])
def test_local_tampering_is_detected(where: str) -> None:
    w = _local()
    ct = bytearray(w.wrap(PLAIN, CTX))
    if where == "truncated":
        ct = ct[:20]
    else:
        index = {"version": 0, "nonce": 5, "body": 15, "tag": len(ct) - 1}[where]
        ct[index] ^= 0x01
    with pytest.raises(WrapperError) as exc:
        w.unwrap(bytes(ct), CTX)
    _assert_mismatch(exc)


@pytest.mark.parametrize(
    "context",
    [
        {"deployment": "other", "purpose": BYOK_PURPOSE},
        {"deployment": "test", "purpose": "something-else"},
        {"deployment": "test"},
        {},
    ],
)
def test_local_wrong_context_fails(context: dict[str, str]) -> None:
    w = _local()
    ct = w.wrap(PLAIN, CTX)
    with pytest.raises(WrapperError) as exc:
        w.unwrap(ct, context)
    _assert_mismatch(exc)


def test_local_other_master_key_fails() -> None:
    ct = _local().wrap(PLAIN, CTX)
    with pytest.raises(WrapperError) as exc:
        _local().unwrap(ct, CTX)
    _assert_mismatch(exc)


def test_byok_context_names_deployment_and_purpose() -> None:
    assert byok_context(Settings(deployment_id="stack-7")) == {
        "deployment": "stack-7",
        "purpose": "byok-openrouter",
    }


def test_kms_round_trip_and_other_deployment(kms_key_id: str) -> None:
    kms = boto3.client("kms")
    kms.create_alias(AliasName="alias/byok-test", TargetKeyId=kms_key_id)
    for key_ref in (kms_key_id, "alias/byok-test"):
        w = KmsKeyWrapper(key_ref)
        assert w.name == "kms"
        ct = w.wrap(PLAIN, CTX)
        assert PLAIN not in ct and base64.b64encode(PLAIN) not in ct
        assert w.unwrap(ct, CTX) == PLAIN
        moved = byok_context(Settings(deployment_id="another-stack"))
        with pytest.raises(WrapperError) as exc:
            w.unwrap(ct, moved)
        _assert_mismatch(exc)


_FAULTS = [
    ("DisabledException", "disabled", "is disabled", "Enable the key"),
    ("NotFoundException", "not_found", "was not found", "KMS_KEY_ID"),
    ("AccessDeniedException", "access_denied", "not allowed to use", "kms:Decrypt"),
    ("KMSInvalidStateException", "invalid_state", "not usable in its current state", "scheduled deletion"),
    ("ThrottlingException", "throttled", "throttling", "Retry in a few seconds"),
    (
        "InvalidCiphertextException",
        "mismatch",
        "stored for another deployment or key",
        "Set the OpenRouter key",
    ),
    ("SomethingNewException", "unavailable", "(SomethingNewException)", "Check the KMS key"),
]


@pytest.mark.parametrize(("code", "reason", "message_part", "action_part"), _FAULTS)
@pytest.mark.parametrize("operation", ["encrypt", "decrypt"])
def test_kms_faults_become_actionable_503s(
    aws: None, operation: str, code: str, reason: str, message_part: str, action_part: str
) -> None:
    client = boto3.client("kms")
    stub = Stubber(client)
    aws_text = "arn:aws:kms:us-east-1:123456789012:key/secret-detail " + PLAIN.decode()
    stub.add_client_error(operation, service_error_code=code, service_message=aws_text, http_status_code=400)
    w = KmsKeyWrapper("alias/byok", client=client)
    with stub, pytest.raises(WrapperError) as exc:
        w.wrap(PLAIN, CTX) if operation == "encrypt" else w.unwrap(b"\x01\x02ciphertext", CTX)
    err = exc.value
    assert (err.status, err.code, err.reason) == (503, "SERVICE_UNAVAILABLE", reason)
    assert message_part in err.message and err.next_actions and action_part in err.next_actions
    body = str(err.body())
    assert "secret-detail" not in body, "AWS's own message is not echoed"
    assert "ciphertext" not in body.replace("cannot be decrypted", "")
    assert not any(form in body for form in encodings(PLAIN.decode()))


def test_kms_unreachable_is_a_503() -> None:
    class Unreachable:
        def decrypt(self, **_: Any) -> dict[str, Any]:
            raise EndpointConnectionError(endpoint_url="https://kms.us-east-1.amazonaws.com/")

    w = KmsKeyWrapper("k", client=Unreachable())  # type: ignore[arg-type]
    with pytest.raises(WrapperError) as exc:
        w.unwrap(b"x", CTX)
    assert exc.value.status == 503 and exc.value.reason == "unavailable"
    assert "Could not reach AWS KMS" in exc.value.message and "VPC endpoint" in str(exc.value.next_actions)


def test_key_wrapper_for_chooses_kms_local_or_refuses(tmp_path: Path) -> None:
    assert isinstance(key_wrapper_for(Settings(kms_key_id="alias/x")), KmsKeyWrapper)
    assert isinstance(key_wrapper_for(Settings(kms_key_id="alias/x", on_aws=True)), KmsKeyWrapper)
    with pytest.raises(WrapperError) as exc:
        key_wrapper_for(Settings(on_aws=True, master_key=base64.b64encode(bytes(32)).decode(), home=tmp_path))
    err = exc.value
    assert err.status == 503 and err.reason == "configuration"
    assert "runs on AWS" in err.message and "KMS_KEY_ID" in err.message
    assert not (tmp_path / "master.key").exists(), "no local key is generated on AWS"

    master = secrets.token_bytes(32)
    from_setting = key_wrapper_for(Settings(master_key=base64.b64encode(master).decode(), home=tmp_path))
    assert isinstance(from_setting, LocalKeyWrapper)
    assert LocalKeyWrapper(master).unwrap(from_setting.wrap(PLAIN, CTX), CTX) == PLAIN
    for bad in ("not base64!", base64.b64encode(bytes(16)).decode()):
        with pytest.raises(WrapperError) as exc:
            key_wrapper_for(Settings(master_key=bad, home=tmp_path))
        assert exc.value.reason == "configuration" and "AIGATEWAY_MASTER_KEY" in exc.value.message


def test_local_master_key_is_generated_0600_and_reused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    home = tmp_path / "data" / "gateway"
    first = key_wrapper_for(Settings(home=home))
    path = home / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(path.read_text())) == 32
    ct = first.wrap(PLAIN, CTX)
    before = path.read_bytes()
    second = key_wrapper_for(Settings(home=home))
    assert path.read_bytes() == before, "the key is reused, not regenerated"
    assert second.unwrap(ct, CTX) == PLAIN
    assert [p.name for p in home.iterdir()] == ["master.key"], "no temporary files left behind"

    os.chmod(path, 0o644)
    with caplog.at_level(logging.WARNING):
        key_wrapper_for(Settings(home=home))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "tightening to 0600" in caplog.text


def test_botocore_debug_logs_never_hold_the_key(kms_key_id: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = KmsKeyWrapper(kms_key_id)
    ct = w.wrap(PLAIN, CTX)
    assert w.unwrap(ct, CTX) == PLAIN
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "redacted" in text, "botocore's body records were captured and redacted"
    for form in [*encodings(PLAIN.decode()), base64.b64encode(ct).decode()]:
        assert form not in text
