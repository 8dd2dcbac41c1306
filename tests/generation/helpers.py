"""Small helpers the generation tests share: reading SSE and the simulator's request log."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
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


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Poll until `predicate()` is truthy (usage rows land after the response); its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def wait_usage(sql: Any, n: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The usage rows, once at least `n` have been written (or the timeout passed)."""

    def rows() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = sql("SELECT * FROM ai.usage ORDER BY created_at")
        return found

    wait_for(lambda: len(rows()) >= n, timeout)
    return rows()
