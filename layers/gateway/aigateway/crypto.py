"""Key wrapping for stored secrets (the BYOK key): AWS KMS on a deployment, AES-256-GCM locally.

Why two implementations behind one small interface: on AWS the key material must never leave
KMS (the key policy decides which function may Encrypt or Decrypt), while a laptop has no KMS
and still needs the BYOK key encrypted at rest. Both bind a ciphertext to an *encryption
context* naming the deployment and the purpose, so a ciphertext copied into another
deployment's database (or used for another purpose) does not decrypt.

Failures become a 503 `SERVICE_UNAVAILABLE` whose message tells the admin what to fix; they
never carry the key, the ciphertext or AWS's own error text (which may name resources).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import SERVICE_UNAVAILABLE, GatewayError
from .settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

log = logging.getLogger(__name__)

BYOK_PURPOSE = "byok-openrouter"
MASTER_KEY_FILE = "master.key"
_LOCAL_VERSION = 1
_NONCE_BYTES = 12
_TAG_BYTES = 16

SET_AGAIN = "Set the OpenRouter key again (POST /api/ai/gateway/config) so it is stored for this deployment."


class KeyWrapper(Protocol):
    """Encrypts and decrypts small secrets under a master key the database never sees."""

    name: str  # "kms" | "local": stored beside each ciphertext

    def wrap(self, plaintext: bytes, context: dict[str, str]) -> bytes: ...

    def unwrap(self, ciphertext: bytes, context: dict[str, str]) -> bytes: ...


class WrapperError(GatewayError):
    """A wrap/unwrap or wrapper-configuration failure: 503 with an admin-actionable message.

    `reason` is a stable machine word (`disabled`, `not_found`, `access_denied`, `invalid_state`,
    `throttled`, `mismatch`, `unavailable`, `configuration`) for logs and tests.
    """

    def __init__(self, reason: str, message: str, next_actions: str | None = None) -> None:
        super().__init__(SERVICE_UNAVAILABLE, 503, message, next_actions)
        self.reason = reason


def byok_context(settings: Settings) -> dict[str, str]:
    """The encryption context of the BYOK OpenRouter key: this deployment, this purpose."""
    return {"deployment": settings.deployment_id, "purpose": BYOK_PURPOSE}


def canonical_context(context: dict[str, str]) -> bytes:
    """The context as bytes that do not depend on dict order (the local wrapper's AAD)."""
    return json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def mismatch_error() -> WrapperError:
    return WrapperError(
        "mismatch",
        "The stored BYOK key cannot be decrypted: it was stored for another deployment or key.",
        SET_AGAIN,
    )


# ---------------------------------------------------------------------------------------------
# Local: AES-256-GCM under a master key from the settings or the local data folder.


class LocalKeyWrapper:
    """AES-256-GCM; output = version byte + 96-bit random nonce + ciphertext and tag."""

    name = "local"

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise config_error("The local master key must be 32 bytes (AIGATEWAY_MASTER_KEY is base64 of 32 bytes).")
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(master_key)

    def wrap(self, plaintext: bytes, context: dict[str, str]) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return bytes([_LOCAL_VERSION]) + nonce + self._aead.encrypt(nonce, plaintext, canonical_context(context))

    def unwrap(self, ciphertext: bytes, context: dict[str, str]) -> bytes:
        from cryptography.exceptions import InvalidTag

        if len(ciphertext) < 1 + _NONCE_BYTES + _TAG_BYTES or ciphertext[0] != _LOCAL_VERSION:
            raise mismatch_error()
        nonce, body = ciphertext[1 : 1 + _NONCE_BYTES], ciphertext[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, canonical_context(context))
        except InvalidTag:
            log.warning("local key unwrap failed: wrong master key, deployment or purpose")
            raise mismatch_error() from None


def config_error(message: str) -> WrapperError:
    return WrapperError("configuration", message, "Fix the gateway's key-wrapping settings and restart it.")


def _decode_master_key(text: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise config_error("AIGATEWAY_MASTER_KEY is not valid base64 (expected base64 of 32 random bytes).") from None
    if len(raw) != 32:
        raise config_error(f"AIGATEWAY_MASTER_KEY must decode to 32 bytes, not {len(raw)}.")
    return raw


def load_or_create_master_key(home: Path) -> bytes:
    """The master key in `home/master.key`, created (mode 0600) on first use.

    Created under a temporary name and hard-linked into place, so two processes starting at
    once agree on one key: the loser of the race reads the winner's complete file.
    """
    path = home / MASTER_KEY_FILE
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = home / f".{MASTER_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
            try:
                os.link(tmp, path)
                log.warning("generated a new local master key at %s (mode 0600); keep it with the database", path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("local master key %s had mode %o; tightening to 0600", path, mode)
        path.chmod(0o600)
    return _decode_master_key(path.read_text(encoding="ascii"))


# ---------------------------------------------------------------------------------------------
# AWS KMS: Encrypt/Decrypt with the encryption context; the key never leaves KMS.

_KMS_FAULTS: dict[str, tuple[str, str, str]] = {
    # code: (reason, message, next action)
    "DisabledException": (
        "disabled",
        "The AWS KMS key that protects the BYOK key is disabled.",
        "Enable the key (KMS console or `aws kms enable-key --key-id <KMS_KEY_ID>`), then retry.",
    ),
    "NotFoundException": (
        "not_found",
        "The AWS KMS key that protects the BYOK key was not found.",
        "Check that KMS_KEY_ID names an existing key in this account and region.",
    ),
    "AccessDeniedException": (
        "access_denied",
        "This function is not allowed to use the AWS KMS key that protects the BYOK key.",
        "Grant this function's role kms:Decrypt (and kms:Encrypt for key management) in the key policy.",
    ),
    "KMSInvalidStateException": (
        "invalid_state",
        "The AWS KMS key that protects the BYOK key is not usable in its current state "
        "(disabled, pending deletion or pending import).",
        "Cancel the key's scheduled deletion or enable it, then retry.",
    ),
    "ThrottlingException": (
        "throttled",
        "AWS KMS is throttling requests for the key that protects the BYOK key.",
        "Retry in a few seconds; if it persists, request a higher KMS quota.",
    ),
    "LimitExceededException": (
        "throttled",
        "AWS KMS request quota exceeded for the key that protects the BYOK key.",
        "Retry in a few seconds; if it persists, request a higher KMS quota.",
    ),
    "InvalidCiphertextException": (
        "mismatch",
        "The stored BYOK key cannot be decrypted: it was stored for another deployment or key.",
        SET_AGAIN,
    ),
    "IncorrectKeyException": (
        "mismatch",
        "The stored BYOK key cannot be decrypted: it was stored for another deployment or key.",
        SET_AGAIN,
    ),
    "KeyUnavailableException": (
        "unavailable",
        "The AWS KMS key that protects the BYOK key is temporarily unavailable.",
        "Retry in a few seconds.",
    ),
    "DependencyTimeoutException": (
        "unavailable",
        "AWS KMS timed out.",
        "Retry in a few seconds.",
    ),
    "KMSInternalException": (
        "unavailable",
        "AWS KMS had an internal error.",
        "Retry in a few seconds.",
    ),
}


def kms_error(code: str, operation: str) -> WrapperError:
    """The 503 for a KMS error code; unknown codes name only the code, never AWS's message."""
    reason, message, action = _KMS_FAULTS.get(
        code,
        (
            "unavailable",
            f"AWS KMS refused to {operation} the BYOK key ({code}).",
            "Check the KMS key and retry.",
        ),
    )
    return WrapperError(reason, message, action)


class KmsKeyWrapper:
    """KMS Encrypt/Decrypt under `key_id` (id, ARN or alias), the context as EncryptionContext.

    `direct`: sign the two calls with aigateway.aws instead of boto3. On Lambda the role's
    credentials are in the environment and boto3's import and client would cost the first BYOK
    call of each environment ~180 ms; elsewhere boto3's credential chain (profiles, instance
    roles) is needed, so the local server and tests use boto3.
    """

    name = "kms"

    def __init__(self, key_id: str, client: KMSClient | None = None, *, direct: bool = False) -> None:
        self.key_id = key_id
        self._client_obj = client
        self._direct = direct and client is None

    def _client(self) -> KMSClient:
        if self._client_obj is None:
            import boto3
            from botocore.config import Config

            guard_aws_debug_logs()
            self._client_obj = boto3.client(
                "kms",
                config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}),
            )
        return self._client_obj

    def _call(self, operation: str, fn: Callable[[KMSClient], Mapping[str, Any]]) -> Mapping[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(self._client())
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code") or "Unknown")
            log.warning("KMS %s failed: %s", operation, code)
            raise kms_error(code, operation) from None
        except BotoCoreError as exc:
            log.warning("KMS %s failed: %s", operation, type(exc).__name__)
            raise WrapperError(
                "unavailable",
                f"Could not reach AWS KMS to {operation} the BYOK key ({type(exc).__name__}).",
                "Check the function's network path to KMS (NAT or a VPC endpoint) and its AWS credentials.",
            ) from None

    def _direct_call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        from . import aws

        try:
            out: dict[str, Any] = aws.call("kms", operation, {"KeyId": self.key_id, **payload})
        except aws.AwsError as exc:
            log.warning("KMS %s failed: %s", operation.lower(), exc.code)
            if exc.status is None:  # never answered: the network path, not KMS
                raise WrapperError(
                    "unavailable",
                    f"Could not reach AWS KMS to {operation.lower()} the BYOK key ({exc.code}).",
                    "Check the function's network path to KMS (NAT or a VPC endpoint) and its AWS credentials.",
                ) from None
            raise kms_error(exc.code, operation.lower()) from None
        return out

    def wrap(self, plaintext: bytes, context: dict[str, str]) -> bytes:
        if self._direct:
            doc = {"Plaintext": base64.b64encode(plaintext).decode(), "EncryptionContext": context}
            return base64.b64decode(self._direct_call("Encrypt", doc)["CiphertextBlob"])
        out = self._call(
            "encrypt", lambda c: c.encrypt(KeyId=self.key_id, Plaintext=plaintext, EncryptionContext=context)
        )
        return bytes(out["CiphertextBlob"])

    def unwrap(self, ciphertext: bytes, context: dict[str, str]) -> bytes:
        if self._direct:
            doc = {"CiphertextBlob": base64.b64encode(ciphertext).decode(), "EncryptionContext": context}
            return base64.b64decode(self._direct_call("Decrypt", doc)["Plaintext"])
        out = self._call(
            "decrypt",
            lambda c: c.decrypt(KeyId=self.key_id, CiphertextBlob=ciphertext, EncryptionContext=context),
        )
        return bytes(out["Plaintext"])


def key_wrapper_for(settings: Settings) -> KeyWrapper:
    """KMS when KMS_KEY_ID is set; on AWS without it, a configuration error; else the local key."""
    if settings.kms_key_id:
        from . import aws

        return KmsKeyWrapper(settings.kms_key_id, direct=settings.on_aws and aws.available())
    if settings.on_aws:
        raise WrapperError(
            "configuration",
            "This deployment runs on AWS but KMS_KEY_ID is not set: BYOK keys must be protected by AWS KMS here.",
            "Set KMS_KEY_ID on the function (the stack's BYOK key) and redeploy.",
        )
    if settings.master_key:
        return LocalKeyWrapper(_decode_master_key(settings.master_key))
    return LocalKeyWrapper(load_or_create_master_key(settings.home))


# ---------------------------------------------------------------------------------------------
# botocore at DEBUG logs request and response bodies: KMS Plaintext and Secrets Manager
# SecretString (base64 or raw) would land in the logs. Redact those records at the source.

_SECRET_FIELDS = ('"Plaintext"', '"CiphertextBlob"', '"SecretString"', '"SecretBinary"')
_GUARDED_LOGGERS = ("botocore.endpoint", "botocore.parsers")


class _AwsBodyRedactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is not ours to fix; let logging report it
            return True
        if any(f in text for f in _SECRET_FIELDS):
            record.msg, record.args = "<AWS request/response body with secret material redacted>", None
        return True


_REDACTOR = _AwsBodyRedactor()


def guard_aws_debug_logs() -> None:
    """Attach the redactor to botocore's body-logging loggers (idempotent, no botocore import)."""
    for name in _GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


guard_aws_debug_logs()
