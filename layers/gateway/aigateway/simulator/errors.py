"""OpenRouter error bodies (``{"error": {"code", "message", "metadata"?}}``) and the exception that carries them.

Handlers raise :class:`SimError` from anywhere in the request path and the app turns it into one
HTTP response, so validation code stays linear. The fixed bodies (auth failures, invalid JSON) are
encoded once at import: they are on the benchmark path for negative tests.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

__all__ = [
    "INSUFFICIENT_CREDITS",
    "INVALID_JSON",
    "NO_AUTH",
    "USER_ID",
    "USER_NOT_FOUND",
    "SimError",
    "error_body",
    "provider_error",
    "rate_limited",
    "simple_error",
]

USER_ID = "user_sim"


class SimError(Exception):
    """An HTTP error answer: status, encoded JSON body and extra headers."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def simple_error(status: int, message: str, *, user_id: bool = False) -> bytes:
    """``{"error":{"message":...,"code":status}}`` — the observed key order of platform errors."""
    body: dict[str, Any] = {"error": {"message": message, "code": status}}
    if user_id:
        body["user_id"] = USER_ID
    return orjson.dumps(body)


def error_body(status: int, message: str, metadata: dict[str, Any] | None = None) -> bytes:
    """``{"error":{"code":S,"message":...,"metadata":{...}},"user_id":...}`` — provider errors."""
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    return orjson.dumps({"error": error, "user_id": USER_ID})


NO_AUTH = simple_error(401, "No auth credentials found")
USER_NOT_FOUND = simple_error(401, "User not found.")
INSUFFICIENT_CREDITS = simple_error(402, "Insufficient credits. Add more using https://openrouter.ai/credits")
INVALID_JSON = orjson.dumps({"error": {"code": 400, "message": "Invalid JSON"}})

# Generic messages per status, as OpenRouter words them (the real cause goes to metadata.raw).
_MESSAGES = {
    400: "Provider returned error",
    401: "User not found.",
    402: "Insufficient credits. Add more using https://openrouter.ai/credits",
    403: "Provider returned error",
    404: "No endpoints found matching your data policy",
    408: "Operation timed out. Please try again later.",
    413: "Request entity too large",
    422: "Provider returned error",
    429: "Provider returned error",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "No available providers for this request",
    524: "Provider timed out",
    529: "Provider returned error",
}
_ERROR_TYPES = {
    400: "invalid_request",
    401: "authentication",
    402: "payment_required",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limit_exceeded",
    500: "server",
    502: "provider_unavailable",
    503: "provider_overloaded",
    524: "timeout",
    529: "provider_overloaded",
}


def provider_error(status: int, provider_name: str, model: str, retry_after: int) -> SimError:
    """The simulated upstream failure for ``x-sim-fail-status`` (generic message + metadata.raw)."""
    metadata: dict[str, Any] = {
        "raw": f"Simulated upstream failure (HTTP {status}) for {model}",
        "provider_name": provider_name,
        "error_type": _ERROR_TYPES.get(status, "unmapped"),
    }
    if status == 429:
        metadata.update(
            is_byok=False,
            provider_error_code="upstream_429",
            limit_source="upstream_provider_shared_pool",
        )
    headers = {"retry-after": str(retry_after)} if status in (429, 503) else None
    return SimError(status, error_body(status, _MESSAGES.get(status, "Provider returned error"), metadata), headers)


def rate_limited(retry_after: int = 1) -> SimError:
    """The platform 429 a ``ratelimited`` key gets, with ``Retry-After`` and ``X-RateLimit-*``."""
    body = error_body(
        429,
        "Rate limit exceeded: limit_rpm/simulated",
        {"raw": "Simulated key rate limit", "provider_name": None, "error_type": "rate_limit_exceeded"},
    )
    headers = {
        "retry-after": str(retry_after),
        "x-ratelimit-limit": "20",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(int((time.time() + retry_after) * 1000)),
    }
    return SimError(429, body, headers)
