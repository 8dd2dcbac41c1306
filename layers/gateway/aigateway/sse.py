"""Server-sent events: parsing the upstream's stream and framing ours.

Upstream frames are `data: <json>` lines ended by a blank line, and `:` comment lines
(OpenRouter's `: OPENROUTER PROCESSING` keep-alives). We parse line by line as bytes
arrive, so an event is handed on the moment its blank line is read — never batched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

DONE = "[DONE]"


@dataclass(slots=True)
class Event:
    """One upstream SSE event: a comment (keep-alive) or a data payload."""

    data: str | None = None
    comment: str | None = None

    def json(self) -> Any:
        return orjson.loads(self.data) if self.data is not None else None


async def parse(lines: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    """Events from an iterator of raw lines (each ending in `\\n`, possibly `\\r\\n`)."""
    data: list[str] = []
    async for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield Event(data="\n".join(data))
                data = []
            continue
        if line.startswith(":"):
            yield Event(comment=line[1:].strip())
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
        # `event:`, `id:`, `retry:` carry nothing OpenRouter uses.
    if data:
        yield Event(data="\n".join(data))


def frame(payload: Any) -> bytes:
    """`data: <compact JSON>\\n\\n` — the only frame shape our callers parse."""
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def comment(text: str = "keep-alive") -> bytes:
    return b": " + text.encode() + b"\n\n"
