"""AWS JSON-protocol calls signed with Signature Version 4 by this module, without boto3.

Why: every function reads its secrets (JWT secret, admin key) from Secrets Manager on its first
request, and importing boto3 plus building one client costs ~180 ms there on the Lambda runtime's
CPython 3.12 (`make bench-lambda` prints the cold starts), more than the rest of that request.
Secrets Manager speaks AWS's small JSON protocol: one POST with an `X-Amz-Target` header. The
signature is the documented SigV4 algorithm, checked against botocore's own signer in the tests.

Credentials are the environment's (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_SESSION_TOKEN`), which is how Lambda hands a function its role. Without them `available()`
is false and callers use boto3, whose credential chain knows profiles and instance roles. The
endpoint honours boto3's overrides (`AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

# Service signing name → (endpoint prefix, the X-Amz-Target prefix, the boto3 endpoint variable).
SERVICES = {
    "secretsmanager": ("secretsmanager", "secretsmanager", "SECRETS_MANAGER"),
    "kms": ("kms", "TrentService", "KMS"),
}
RETRYABLE = {"ThrottlingException", "InternalServiceError", "InternalFailure", "ServiceUnavailable"}


class AwsError(Exception):
    """An AWS API refusal (`code` is the service's error type) or an unreachable endpoint."""

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None

    @classmethod
    def from_env(cls) -> Credentials | None:
        key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not key or not secret:
            return None
        return cls(key, secret, os.environ.get("AWS_SESSION_TOKEN") or None)


def available() -> bool:
    """Whether calls can be signed from the environment (always so on Lambda)."""
    return Credentials.from_env() is not None


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def endpoint(service: str, region_name: str) -> str:
    prefix, _, variable = SERVICES[service]
    override = os.environ.get(f"AWS_ENDPOINT_URL_{variable}") or os.environ.get("AWS_ENDPOINT_URL")
    if override:
        return override.rstrip("/") + "/"
    suffix = "amazonaws.com.cn" if region_name.startswith("cn-") else "amazonaws.com"
    return f"https://{prefix}.{region_name}.{suffix}/"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    creds: Credentials,
    region_name: str,
    service: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """`headers` plus X-Amz-Date, the session token and the SigV4 Authorization header."""
    now = now or datetime.now(UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parts = urlsplit(url)
    signed = {k.lower(): " ".join(v.split()) for k, v in headers.items()}
    signed["host"] = parts.netloc
    signed["x-amz-date"] = amz_date
    if creds.token:
        signed["x-amz-security-token"] = creds.token
    names = sorted(signed)
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/~"),
            parts.query,
            "".join(f"{n}:{signed[n]}\n" for n in names),
            ";".join(names),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{day}/{region_name}/{service}/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{creds.secret_key}".encode(), day), region_name), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out = dict(headers)
    out["X-Amz-Date"] = amz_date
    if creds.token:
        out["X-Amz-Security-Token"] = creds.token
    credential = f"{creds.access_key}/{scope}"
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return out


def call(service: str, action: str, payload: dict[str, Any], *, timeout_s: float = 5.0, attempts: int = 3) -> Any:
    """One JSON-protocol action (e.g. `call("secretsmanager", "GetSecretValue", {...})`).

    Retries throttling, 5xx and connection failures (`attempts` in all, 0.1 s then 0.2 s apart);
    raises AwsError with the service's error type otherwise. Never logs the payload or answer.
    """
    creds = Credentials.from_env()
    if creds is None:
        raise AwsError("MissingCredentials", "no AWS credentials in the environment")
    region_name = region()
    url = endpoint(service, region_name)
    body = json.dumps(payload).encode()
    target = f"{SERVICES[service][1]}.{action}"
    last: AwsError | None = None
    for attempt in range(attempts):
        if attempt:
            time.sleep(0.1 * 2 ** (attempt - 1))
        headers = sign(
            "POST",
            url,
            {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target},
            body,
            creds,
            region_name,
            service,
        )
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - https or the configured endpoint
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            last = _refusal(exc)
            if exc.code < 500 and last.code not in RETRYABLE:
                raise last from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last = AwsError("EndpointUnreachable", type(exc).__name__)
    assert last is not None
    raise last


def _refusal(exc: urllib.error.HTTPError) -> AwsError:
    try:
        doc = json.loads(exc.read() or b"{}")
    except ValueError:
        doc = {}
    code = str(doc.get("__type") or doc.get("code") or f"HTTP{exc.code}").rsplit("#", 1)[-1]
    return AwsError(code, str(doc.get("message") or doc.get("Message") or exc.reason), exc.code)
