"""JSON responses encoded with orjson, and the error body every failure uses."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

import orjson
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from ..errors import GatewayError


class JSON(JSONResponse):
    """orjson-encoded JSON: several times faster than the stdlib for large bodies (embeddings).

    A JSONResponse subclass so FastAPI documents these bodies as JSON in the OpenAPI document.
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class SSEResponse(StreamingResponse):
    """An event stream whose `on_close` runs however it ends: finished, failed or abandoned.

    Starlette skips a StreamingResponse's background task when the server reports a client
    disconnect by raising (ASGI spec 2.4); closing the upstream and recording the tokens
    already generated must not depend on which way the caller went away.
    """

    def __init__(
        self,
        content: AsyncIterable[bytes],
        *,
        headers: dict[str, str],
        on_close: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(content, media_type="text/event-stream", headers=headers)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._on_close()


def error_response(err: GatewayError, request_id: str | None = None) -> JSON:
    headers = dict(err.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return JSON(err.body(), status_code=err.status, headers=headers)


# The error body, as documented for every operation in the OpenAPI document.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message", "statusCode"],
    "properties": {
        "error": {
            "anyOf": [{"type": "string"}, {"type": "object"}],
            "description": "The machine code (CONTRACT §5); an object on the OpenAI-compatible routes.",
        },
        "message": {"type": "string"},
        "statusCode": {"type": "integer"},
        "nextActions": {"type": "string"},
    },
}
