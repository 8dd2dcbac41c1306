"""One error type for every failure a caller can see, and the body it becomes.

Every module raises `GatewayError`; the API layer turns it into the contract's body
`{"error", "message", "statusCode", "nextActions"?}`. Keeping the codes here, next to
their statuses, is what lets a test walk the error table (docs/api.md#errors) row by row.
"""

from __future__ import annotations

from typing import Any

# Every code a caller can see; statuses and causes in docs/api.md#errors (auth codes: #authentication).
INVALID_INPUT = "INVALID_INPUT"
AI_INVALID_MODEL = "AI_INVALID_MODEL"
TOKEN_LIMIT_EXCEEDED = "TOKEN_LIMIT_EXCEEDED"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"
RATE_LIMITED = "RATE_LIMITED"
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
AI_NOT_CONFIGURED = "AI_NOT_CONFIGURED"
AI_INVALID_API_KEY = "AI_INVALID_API_KEY"
AI_UPSTREAM_UNAVAILABLE = "AI_UPSTREAM_UNAVAILABLE"
CONTENT_BLOCKED = "CONTENT_BLOCKED"
SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
NOT_FOUND = "NOT_FOUND"
INTERNAL_ERROR = "INTERNAL_ERROR"
AUTH_INVALID_CREDENTIALS = "AUTH_INVALID_CREDENTIALS"
AUTH_UNAUTHORIZED = "AUTH_UNAUTHORIZED"
AUTH_INVALID_API_KEY = "AUTH_INVALID_API_KEY"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
FEATURE_NOT_ALLOWED = "FEATURE_NOT_ALLOWED"


class GatewayError(Exception):
    """A failure with the HTTP status, machine code and human message the caller gets."""

    def __init__(
        self,
        code: str,
        status: int,
        message: str,
        next_actions: str | None = None,
        headers: dict[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message
        self.next_actions = next_actions
        self.headers = headers or {}
        self.param = param  # the request field at fault, where one is (OpenAI's `error.param`)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.code, "message": self.message, "statusCode": self.status}
        if self.next_actions:
            out["nextActions"] = self.next_actions
        return out

    def __repr__(self) -> str:
        return f"GatewayError({self.code!r}, {self.status}, {self.message!r})"


def invalid_input(message: str, next_actions: str | None = None) -> GatewayError:
    return GatewayError(INVALID_INPUT, 400, message, next_actions)


def not_found(message: str) -> GatewayError:
    return GatewayError(NOT_FOUND, 404, message)


def service_unavailable(message: str = "The database is unavailable. Please retry shortly.") -> GatewayError:
    return GatewayError(
        SERVICE_UNAVAILABLE, 503, message, "Retry in a few seconds; if it persists, check the database."
    )
