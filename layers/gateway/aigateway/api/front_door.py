"""Refuses requests that did not come through the CloudFront front door.

Function URLs are public (AuthType NONE: the SDKs' POST bodies are unsigned), so without this a
caller could skip CloudFront and its protections by calling a function URL directly. CloudFront
adds a custom origin header carrying a secret to every request it forwards; with
AIGATEWAY_ORIGIN_SECRET set, a request without the right value is a 403 in the caller's dialect.

One path is exempt, the health check (`{"status": "ok"}`, which discloses nothing): the Lambda
Web Adapter's readiness check calls it on loopback, without the header, on every cold start of
the chat function. The adapter would accept a 403 as ready, but each would be counted as an
error in the request metrics and alarms. The header is removed once checked, so nothing
downstream can forward or log it.
"""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import AUTH_UNAUTHORIZED, GatewayError
from .failures import error_response

HEADER = "x-origin-verify"
_HEADER = HEADER.encode()
EXEMPT_PATH = "/api/ai/health"


def _refusal() -> GatewayError:
    return GatewayError(
        AUTH_UNAUTHORIZED,
        403,
        "Requests must come through the gateway's front door.",
        "Call the gateway's CloudFront URL (the stack's FrontDoorUrl output), not a function URL.",
    )


class FrontDoor:
    """Pure ASGI, like the other middleware: a streamed answer passes through untouched."""

    def __init__(self, app: ASGIApp, secret: str) -> None:
        if not secret:
            raise ValueError("FrontDoor needs a non-empty secret")
        self.app = app
        self.secret = secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == EXEMPT_PATH:
            await self.app(scope, receive, send)
            return
        given = b""
        kept = []
        for name, value in scope["headers"]:
            if name == _HEADER:
                given = value
            else:
                kept.append((name, value))
        # Constant time: the comparison must not tell a prober how much of its guess was right.
        if not hmac.compare_digest(given, self.secret):
            await error_response(_refusal(), scope["path"])(scope, receive, send)
            return
        await self.app({**scope, "headers": kept}, receive, send)
