"""SSEResponse runs its teardown however the stream ends, including an ASGI 2.4 client disconnect."""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import pytest
from aigateway.api.responses import SSEResponse
from starlette.requests import ClientDisconnect


async def _events() -> AsyncIterator[bytes]:
    for i in range(100):
        yield f"data: {i}\n\n".encode()


@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
async def test_on_close_runs_when_the_client_goes_away(spec_version: str) -> None:
    closed: list[bool] = []
    sent: list[MutableMapping[str, Any]] = []

    async def on_close() -> None:
        closed.append(True)

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and len(sent) >= 3:
            raise OSError("client went away")  # what an ASGI spec 2.4 server reports
        sent.append(message)

    async def receive() -> dict[str, Any]:
        import asyncio

        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"spec_version": spec_version}, "method": "POST", "headers": []}
    response = SSEResponse(_events(), headers={}, on_close=on_close)
    with pytest.raises((ClientDisconnect, OSError)):
        await response(scope, receive, send)
    assert closed == [True]


async def test_on_close_runs_after_a_complete_stream() -> None:
    closed: list[bool] = []

    async def on_close() -> None:
        closed.append(True)

    bodies: list[bytes] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message.get("body", b""))

    async def receive() -> dict[str, Any]:
        import asyncio

        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "POST", "headers": []}
    await SSEResponse(_events(), headers={}, on_close=on_close)(scope, receive, send)
    assert closed == [True] and sum(1 for b in bodies if b) == 100
