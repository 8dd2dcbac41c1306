"""Small helpers the generation tests share: reading SSE and the simulator's request log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON payloads of `data:` lines, as they arrive."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


def sim_log(sim_url: str) -> list[dict[str, Any]]:
    return list(httpx.get(sim_url + "/_sim/requests").json()["requests"])


def sim_chats(sim_url: str) -> list[dict[str, Any]]:
    return [e for e in sim_log(sim_url) if e["path"].endswith("/chat/completions")]


def sim_reset(sim_url: str) -> None:
    httpx.post(sim_url + "/_sim/reset")
