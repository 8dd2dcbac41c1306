"""The one place a failure becomes an HTTP answer, in the caller's dialect.

Every kind of failure is first mapped to a `GatewayError` (`to_gateway_error`): our own errors
as raised, request validation as 400 INVALID_INPUT naming the field (worded by api/validation.py
for every dialect), routing 404/405, anything unexpected as a 500 carrying the request id (and
nothing of its internals). The error is then rendered in the dialect of the route that failed:

* native (`/api/ai/*`): `{"error": CODE, "message", "statusCode", "nextActions"?}`;
* OpenAI (`/api/ai/v1/*`): the OpenAI SDKs read `body["error"]["message"]` and raise by HTTP
  status, so `error` is an object `{message, type, code, param}` (`code` = our code, `type` =
  OpenAI's error type for the status, `param` = the request field at fault or null), beside the
  same flat `message`, `statusCode`, `nextActions` keys. Unknown paths and methods, bodies over
  the limit and front-door refusals under `/api/ai/v1` answer in this shape too.
* Anthropic (`/api/ai/v1/messages*`): the Anthropic SDKs read `body["error"]["message"]` and
  raise by HTTP status, so the body is `{"type": "error", "error": {type, message, code}}`
  (`type` = Anthropic's error type for the status, `code` = ours) beside the same flat keys.
  404, 405, 413 and validation failures on those paths answer in this shape too.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request

from ..errors import INTERNAL_ERROR, INVALID_INPUT, METHOD_NOT_ALLOWED, GatewayError, not_found
from . import validation
from .responses import JSON

log = logging.getLogger(__name__)

Dialect = Literal["native", "openai", "anthropic"]
OPENAI_PREFIX = "/api/ai/v1/"
ANTHROPIC_PATH = "/api/ai/v1/messages"

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def dialect_for(path: str) -> Dialect:
    """The error shape a path's callers parse; the one place the dialect is chosen."""
    if path == ANTHROPIC_PATH or path.startswith(ANTHROPIC_PATH + "/"):
        return "anthropic"
    return "openai" if path.startswith(OPENAI_PREFIX) or path == OPENAI_PREFIX.rstrip("/") else "native"


def openai_error_type(status: int) -> str:
    """OpenAI's `error.type` for an HTTP status."""
    return _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def anthropic_error_type(status: int) -> str:
    """Anthropic's `error.type` for an HTTP status."""
    return _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(err: GatewayError, dialect: Dialect) -> dict[str, Any]:
    body = err.body()
    if dialect == "anthropic":
        error = {"type": anthropic_error_type(err.status), "message": err.message, "code": err.code}
        return {"type": "error", **body, "error": error}
    if dialect == "openai":
        body["error"] = {
            "message": err.message,
            "type": openai_error_type(err.status),
            "code": err.code,
            "param": err.param,
        }
    return body


def error_response(err: GatewayError, path: str, *, request_id: str | None = None) -> JSON:
    """The error answer. `request_id` only where the request-id middleware cannot add the header
    (the last-resort 500 is sent from outside it); elsewhere it would be sent twice."""
    headers = dict(err.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return JSON(error_body(err, dialect_for(path)), status_code=err.status, headers=headers)


def request_id_of(request: Request) -> str:
    rid: str = request.scope.get("state", {}).get("request_id", "")
    return rid


def to_gateway_error(request: Request, exc: Exception) -> GatewayError:
    """Each kind of failure, as the error the caller gets."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, RequestValidationError):
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return GatewayError(
                INVALID_INPUT,
                400,
                "Malformed JSON in request body",
                "Please ensure your request body contains valid JSON",
            )
        message, param = validation.render(errors)
        return GatewayError(INVALID_INPUT, 400, message, param=param)
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            err = not_found(f"Endpoint {request.method} {request.url.path} not found")
            err.next_actions = "Please check the API documentation for available endpoints"
            return err
        if exc.status_code == 405:
            return GatewayError(METHOD_NOT_ALLOWED, 405, f"Method {request.method} not allowed on {request.url.path}")
        code = INVALID_INPUT if exc.status_code < 500 else INTERNAL_ERROR
        return GatewayError(code, exc.status_code, str(exc.detail))
    rid = request_id_of(request)
    log.error("unhandled error", extra={"request_id": rid}, exc_info=exc)
    return GatewayError(
        INTERNAL_ERROR,
        500,
        f"An unexpected error occurred. Request id: {rid}",
        "Retry the request; if it keeps failing, report the request id to the administrator.",
    )


async def handle(request: Request, exc: Exception) -> JSON:
    """The exception handler for every failure class (build_app registers it for each)."""
    err = to_gateway_error(request, exc)
    unexpected = not isinstance(exc, GatewayError | RequestValidationError | HTTPException)
    return error_response(err, request.url.path, request_id=request_id_of(request) if unexpected else None)


# The error body, as documented for every operation in the OpenAPI document.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message", "statusCode"],
    "properties": {
        "error": {
            "anyOf": [{"type": "string"}, {"type": "object"}],
            "description": "The machine code (docs/api.md#errors); an object on the OpenAI-compatible routes.",
        },
        "message": {"type": "string"},
        "statusCode": {"type": "integer"},
        "nextActions": {"type": "string"},
    },
}
