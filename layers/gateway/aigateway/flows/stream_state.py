"""What a relayed stream has seen so far: content, tool-call fragments, citations, usage.

Both dialects (native SSE and OpenAI chunks) feed upstream chunks through `absorb`, and the
usage row is built from the same state whether the stream ended, failed or was cut by the
caller hanging up.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .. import sse
from ..upstream_errors import StreamBroken
from ..usage import Usage


class EventSource(Protocol):
    """An open upstream stream, or a cached answer replayed as one (flows/response_cache.py)."""

    def events(self) -> AsyncIterator[sse.Event]: ...


log = logging.getLogger(__name__)


@dataclass
class ToolCallAssembler:
    """Merges OpenAI-style tool-call deltas by `index` (id and name from the first fragment)."""

    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    _last: int = -1

    def add(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index")
        if not isinstance(index, int):
            index = self._last if self._last >= 0 else 0  # no index: continue the last call
        self._last = index
        call = self.calls.setdefault(index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        if fragment.get("id"):
            call["id"] = fragment["id"]
        fn = fragment.get("function") or {}
        if fn.get("name"):
            call["function"]["name"] = fn["name"]
        if fn.get("arguments"):
            call["function"]["arguments"] += fn["arguments"]

    def result(self) -> list[dict[str, Any]]:
        out = []
        for i in sorted(self.calls):
            call = self.calls[i]
            if not call["id"]:
                call["id"] = f"call_{i}"
            out.append(call)
        return out


def upstream_error_message(chunk: dict[str, Any]) -> str | None:
    """The message of a mid-stream error event (top-level `error`, or a choice finishing in error)."""
    err = chunk.get("error")
    if isinstance(err, dict):
        return str(err.get("message") or "Provider returned error")
    if isinstance(err, str):
        return err
    for choice in chunk.get("choices") or ():
        if isinstance(choice, dict) and choice.get("finish_reason") == "error":
            return "Provider returned error"
    return None


@dataclass
class StreamState:
    usage: Usage | None = None
    served_model: str | None = None
    finish_reason: str | None = None
    tools: ToolCallAssembler = field(default_factory=ToolCallAssembler)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    chars: int = 0
    error: str | None = None
    done: bool = False

    def absorb(self, chunk: dict[str, Any]) -> list[str]:
        """Record one upstream chunk; returns its content deltas in order."""
        if isinstance(chunk.get("model"), str):
            self.served_model = chunk["model"]
        usage = Usage.read(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        contents: list[str] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                contents.append(content)
                self.chars += len(content)
            for fragment in delta.get("tool_calls") or ():
                if isinstance(fragment, dict):
                    self.tools.add(fragment)
            for note in delta.get("annotations") or ():
                if isinstance(note, dict):
                    self.annotations.append(note)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return contents


async def upstream_chunks(stream: EventSource, state: StreamState) -> AsyncIterator[dict[str, Any] | None]:
    """The upstream's chunks as they arrive (None for a keep-alive comment), until `[DONE]`.

    Ends early with `state.error` set on an unreadable event, an upstream error event or a
    broken connection; each dialect's relay then sends its own error frame.
    """
    try:
        async for event in stream.events():
            if event.data is None:
                yield None
                continue
            if event.data == sse.DONE:
                return
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                state.error = "the AI provider sent an unreadable stream event"
                return
            if not isinstance(chunk, dict):
                continue
            message = upstream_error_message(chunk)
            if message is not None:
                state.error = message
                return
            yield chunk
    except (StreamBroken, UnicodeDecodeError) as exc:
        log.warning("upstream stream failed: %s", type(exc).__name__)
        state.error = "the AI provider connection failed"
