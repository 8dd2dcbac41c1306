"""What an upstream failure is, and what the caller sees for it: one place that maps each kind.

The client (openrouter.py) raises `UpstreamFailure` for every answer it cannot use and for a
request that got no answer; flows and the credential check turn one that retries did not cure
into the caller's error with `to_gateway_error` (docs/adr/0011 says why each maps as it does).
Kept apart from the client so the functions that only map errors (configs, usage) import no HTTP
client at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import (
    AI_INVALID_API_KEY,
    AI_INVALID_MODEL,
    AI_UPSTREAM_UNAVAILABLE,
    CONTENT_BLOCKED,
    INVALID_INPUT,
    PAYLOAD_TOO_LARGE,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    TOKEN_LIMIT_EXCEEDED,
    GatewayError,
)

RETRYABLE = frozenset({408, 429, 500, 502, 503, 504, 520, 522, 524, 529})


@dataclass
class UpstreamFailure(Exception):
    """An upstream answer we could not use, before it is mapped for the caller."""

    status: int
    message: str
    retry_after: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    may_retry: bool = True  # False once the request may have started a generation upstream

    @property
    def retryable(self) -> bool:
        return self.may_retry and self.status in RETRYABLE


def retry_after_of(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_of(body: Any) -> tuple[int | None, str, dict[str, Any]]:
    """(code, message, metadata) of an OpenRouter error body, tolerant of its variants."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = err.get("code")
        raw_meta = err.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        return (code if isinstance(code, int) else None), str(err.get("message") or "Provider returned error"), meta
    if isinstance(err, str):
        return None, err, {}
    return None, "Provider returned error", {}


def transport_failure(exc: BaseException) -> UpstreamFailure:
    """A request that got no HTTP answer: a timeout (504) or a connection failure (502); both retryable."""
    if isinstance(exc, TimeoutError):
        return UpstreamFailure(504, "the request to the AI provider timed out")
    return UpstreamFailure(502, f"could not reach the AI provider ({type(exc).__name__})")


def read_timeout() -> UpstreamFailure:
    """The request went out but no answer came in time: a 504, never retried (module docstring)."""
    return UpstreamFailure(504, "the request to the AI provider timed out waiting for its answer", may_retry=False)


def to_gateway_error(f: UpstreamFailure, key_source: str | None = None) -> GatewayError:
    """What the caller sees for an upstream failure that retries did not cure (docs/adr/0011)."""
    msg = f.message
    low = msg.lower()
    if f.status in (401, 403):
        if f.status == 403 and (f.metadata.get("reasons") or f.metadata.get("flagged_input")):
            return GatewayError(CONTENT_BLOCKED, 400, "The provider's moderation blocked this content.")
        text = (
            "Your BYOK API key is invalid or has been revoked. Please update it in Gateway settings."
            if key_source == "byok"
            else "AI provider authentication failed. Check your API key configuration."
        )
        return GatewayError(AI_INVALID_API_KEY, 401, text, "Update your API key in the Gateway credentials page.")
    if f.status == 429:
        wait = f.retry_after if f.retry_after is not None else 1.0
        return GatewayError(
            RATE_LIMITED,
            429,
            "AI provider rate limit exceeded. Please wait before retrying.",
            "Wait a moment and retry, or check your API key rate limits.",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    if f.status == 402:
        return GatewayError(
            QUOTA_EXCEEDED,
            402,
            "The AI provider account behind this gateway is out of credits.",
            "Ask the administrator to add OpenRouter credits or raise the key's limit.",
        )
    if f.status == 404 or (f.status == 400 and "model" in low and ("valid" in low or "not found" in low)):
        return GatewayError(AI_INVALID_MODEL, 400, f"The AI provider does not serve this model: {msg}")
    if f.status == 400 and ("context" in low or "token" in low):
        return GatewayError(TOKEN_LIMIT_EXCEEDED, 400, f"The request is too long for the model: {msg}")
    if f.status == 413:
        return GatewayError(PAYLOAD_TOO_LARGE, 413, "The AI provider refused the request as too large.")
    if f.status in (400, 422):
        return GatewayError(INVALID_INPUT, 400, f"The AI provider rejected the request: {msg}")
    return GatewayError(
        AI_UPSTREAM_UNAVAILABLE,
        502,
        f"The AI provider is unavailable: {msg}",
        "Retry in a moment; if it persists, try another model.",
    )


class StreamBroken(Exception):
    """The upstream connection failed mid-stream (the HTTP client's own errors stay in this module)."""
