"""The SSE response: one ASGI ``send`` per frame, timing controls, disconnect detection.

Starlette's ``StreamingResponse`` is not used because the simulator needs three things it does
not give: every frame written by its own ``http.response.body`` message (tests measure frame
timing, so frames are never coalesced), waits that end early when the client goes away, and a
record of what happened (``chunks_sent``, ``cancelled``) in the request log. uvicorn's ``send``
silently drops writes after a disconnect, so a task waits on ``receive()`` for the
``http.disconnect`` message; delays wait on that task instead of sleeping blindly.

Sequence: ``: OPENROUTER PROCESSING`` comment; during ``x-sim-latency-ms`` a keep-alive comment
every ``x-sim-keepalive-ms``; body frames (reasoning, content, tool-call fragments, annotations,
images) with ``x-sim-chunk-delay-ms`` before each frame but the first; the finish chunk; the usage
chunk; ``data: [DONE]``. With ``x-sim-fail-after-chunks: K`` the error event replaces everything
after the K-th body frame and the stream ends without ``[DONE]``. ``chunks_sent`` counts ``data:``
frames other than ``[DONE]``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .chat import ChatPlan
from .controls import Controls
from .render import error_frame, render_stream
from .state import SimState

__all__ = ["COMMENT", "DONE", "SSEStream"]

COMMENT = b": OPENROUTER PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"


class SSEStream(Response):
    """A chat completion stream for one :class:`ChatPlan`."""

    media_type = "text/event-stream"

    def __init__(self, plan: ChatPlan, controls: Controls, entry: dict[str, Any], state: SimState) -> None:
        # Response.__init__ is skipped on purpose: there is no body to render.
        self.status_code = 200
        self.background = None
        self.plan = plan
        self.controls = controls
        self.entry = entry
        self.state = state
        self.raw_headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache"),
            (b"x-generation-id", plan.gen_id.encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher: asyncio.Future[Any] = asyncio.ensure_future(receive())
        try:
            await self._run(watcher, send)
        finally:
            if not watcher.done():
                watcher.cancel()

    @staticmethod
    async def _gone(watcher: asyncio.Future[Any], seconds: float) -> bool:
        """Wait ``seconds``; True as soon as the client disconnects."""
        done, _ = await asyncio.wait((watcher,), timeout=seconds)
        return bool(done)

    async def _run(self, watcher: asyncio.Future[Any], send: Send) -> None:
        controls, entry, plan = self.controls, self.entry, self.plan
        entry["chunks_sent"] = 0
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": COMMENT, "more_body": True})

        remaining = controls.latency_ms / 1000
        step = controls.keepalive_ms / 1000
        while remaining > 0:
            pause = min(step, remaining)
            if await self._gone(watcher, pause):
                entry["cancelled"] = True
                return
            remaining -= pause
            if remaining > 1e-9:
                await send({"type": "http.response.body", "body": COMMENT, "more_body": True})

        frames = render_stream(plan)
        fail_at = controls.fail_after_chunks
        if fail_at is not None:
            sequence = [*frames.body[:fail_at], error_frame(plan)]
            usage_at = -1
        else:
            sequence = [*frames.body, frames.finish, frames.usage, DONE]
            usage_at = len(sequence) - 2
        delay = controls.chunk_delay_ms / 1000

        for index, frame in enumerate(sequence):
            if (index and delay and await self._gone(watcher, delay)) or watcher.done():
                entry["cancelled"] = True
                return
            if index == usage_at:
                self.state.report_usage(entry, plan.usage)
            if frame is not DONE:
                entry["chunks_sent"] += 1
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
