"""How a flow's result leaves as HTTP: orjson bodies, event streams, and the one place a call is settled.

`answer_response` and `stream_response` are the only way a generation route answers, so every
dialect settles a call (usage row + quota charge, `flows.metering.settle`) at the same point:
before the last byte leaves. A JSON body is sent only after its call was settled; a stream's
final frame (`done`, `[DONE]`, or the error frame) only after `ChatStream.finish` ran (the
dialects' frame generators call it). On Lambda the environment is frozen the moment the response
ends, so anything left for after it would run late or never; locally the same order means that
when a caller has its answer, the call has been counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from .. import sse
from ..cache import HEADER as CACHE_HEADER
from ..flows.metering import settle

if TYPE_CHECKING:
    from ..flows.chat import ChatStream
    from ..flows.common import Answer
    from ..services import Services

SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}
KEEPALIVE = sse.comment("keep-alive")  # relayed for each upstream keep-alive: proxies and clients stay patient


class JSON(JSONResponse):
    """orjson-encoded JSON: several times faster than the stdlib for large bodies (embeddings).

    A JSONResponse subclass so FastAPI documents these bodies as JSON in the OpenAPI document.
    """

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


class SSEResponse(StreamingResponse):
    """An event stream whose `on_close` runs however it ends: finished, failed or abandoned.

    Starlette skips a StreamingResponse's background task when the server reports a client
    disconnect by raising (ASGI HTTP spec, version 2.4); closing the upstream and recording the tokens
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


async def answer_response(svc: Services, answer: Answer[Any], body: dict[str, Any]) -> JSON:
    """A finished call's JSON body with its rate-limit headers, once the call is settled."""
    await settle(svc, answer.admission, answer.usage)
    return JSON(body, headers=_with_cache(answer.admission.headers, answer.cache_status))


def stream_response(stream: ChatStream, frames: AsyncIterable[bytes]) -> SSEResponse:
    """A dialect's frames for an open stream. The frames settle it before their final frame; `on_close`
    runs `finish` again (a no-op then) for a stream that ended otherwise: the caller hung up."""
    headers = _with_cache({**SSE_HEADERS, **stream.admission.headers}, stream.cache_status)
    return SSEResponse(frames, headers=headers, on_close=stream.finish)


def _with_cache(headers: dict[str, str], status: str | None) -> dict[str, str]:
    """The cache's verdict (HIT / MISS / BYPASS) beside the other headers, when the model's cache is on."""
    return headers if status is None else {**headers, CACHE_HEADER: status}
