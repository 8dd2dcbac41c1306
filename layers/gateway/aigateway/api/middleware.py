"""Pure-ASGI middleware: request ids and the body size limit.

Pure ASGI rather than `BaseHTTPMiddleware` because the latter buffers and breaks
cancellation of streaming responses, which the chat route depends on.
"""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import PAYLOAD_TOO_LARGE, GatewayError
from ..logs import request_id_var
from .failures import error_response


class RequestId:
    """Gives each request a fresh server-side id and returns it as `x-request-id`.

    Never the caller's own header: the id keys the usage row (a replayed record inserts
    once), so a caller who could choose it could make the gateway drop its usage.

    The id is also the logging context's request id (aigateway.logs) for the whole request,
    streamed body and tasks it starts included, and is reset when the request ends.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class BodyLimit:
    """Rejects bodies over the limit with 413 before anything parses them.

    A declared Content-Length over the limit is refused at once. A chunked body is read
    here up to the limit (it would be read in full by the route anyway) and replayed.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> GatewayError:
        mib = self.max_bytes / (1024 * 1024)
        return GatewayError(
            PAYLOAD_TOO_LARGE,
            413,
            f"Request body is larger than the {mib:g} MiB limit",
            "Send a smaller request: fewer or smaller images and files.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
                break
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = self.max_bytes + 1
            if declared > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._reject(scope, receive, send, drained=True)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, drained: bool = False) -> None:
        await error_response(self._too_large(), scope["path"])(scope, receive, send)
