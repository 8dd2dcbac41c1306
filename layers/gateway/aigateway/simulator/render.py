"""Encode a :class:`~.chat.ChatPlan` for the wire: the non-stream body and the SSE frames.

Key order follows the observed OpenRouter payloads (non-stream body and stream chunks). Stream frames share
one pre-encoded prefix (``data: {"id":...,"provider":...,"model":...,"object":...,"created":...,
"choices":[{"index":0,"delta":``) so each frame costs one small ``orjson.dumps`` of its delta;
every frame is a complete ``data: ...\n\n`` bytes object that :mod:`.streaming` sends on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .chat import ChatPlan

__all__ = ["StreamFrames", "error_frame", "render_response", "render_stream"]


def render_response(plan: ChatPlan) -> bytes:
    """The non-stream body in the observed OpenRouter key order."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": plan.content,
        "refusal": None,
        "reasoning": plan.reasoning,
    }
    if plan.reasoning is not None:
        message["reasoning_details"] = [
            {"type": "reasoning.text", "text": plan.reasoning, "format": "unknown", "index": 0}
        ]
    if plan.tool_calls:
        message["tool_calls"] = [
            {"type": "function", "index": i, "id": cid, "function": {"name": name, "arguments": args}}
            for i, (cid, name, args) in enumerate(plan.tool_calls)
        ]
    if plan.annotations or plan.tool_calls:
        message["annotations"] = plan.annotations
    if plan.images:
        message["images"] = plan.images
    return orjson.dumps(
        {
            "id": plan.gen_id,
            "provider": plan.provider,
            "model": plan.model,
            "object": "chat.completion",
            "created": plan.created,
            "choices": [
                {
                    "logprobs": _logprobs(plan),
                    "finish_reason": plan.finish_reason,
                    "native_finish_reason": plan.finish_reason,
                    "index": 0,
                    "message": message,
                }
            ],
            "system_fingerprint": "fp_simulated",
            "usage": plan.usage,
        }
    )


_OPEN_TAIL = b',"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}\n\n'


def _logprobs(plan: ChatPlan) -> dict[str, Any] | None:
    if plan.logprobs is None:
        return None
    return {"content": [entry for chunk in plan.logprobs for entry in chunk], "refusal": None}


def _tail(logprobs: list[dict[str, Any]] | None) -> bytes:
    """A body frame's end: `logprobs: null`, or the tokens of this frame's content."""
    if logprobs is None:
        return _OPEN_TAIL
    entries = orjson.dumps({"content": logprobs, "refusal": None})
    return b',"finish_reason":null,"native_finish_reason":null,"logprobs":' + entries + b"}]}\n\n"


_EMPTY_DELTA = b'{"role":"assistant","content":""}'


@dataclass(slots=True)
class StreamFrames:
    """Every ``data:`` frame of a stream, encoded: body frames, then finish and usage."""

    head: bytes
    body: list[bytes]
    finish: bytes
    usage: bytes


def _tool_deltas(calls: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Fragments per call (id/type/name first, arguments in two halves), interleaved by index."""
    per_call: list[list[dict[str, Any]]] = []
    for index, (cid, name, args) in enumerate(calls):
        half = len(args) // 2
        first = {"index": index, "id": cid, "type": "function", "function": {"name": name, "arguments": ""}}
        per_call.append(
            [
                first,
                {"index": index, "function": {"arguments": args[:half]}},
                {"index": index, "function": {"arguments": args[half:]}},
            ]
        )
    deltas: list[dict[str, Any]] = []
    for step in range(3):
        for index, fragments in enumerate(per_call):
            delta: dict[str, Any] = {"role": "assistant"}
            if step == 0 and index == 0:
                delta["content"] = None
            delta["tool_calls"] = [fragments[step]]
            deltas.append(delta)
    return deltas


def render_stream(plan: ChatPlan) -> StreamFrames:
    """Encode the stream once; each frame is later written with its own ``send``."""
    dumps = orjson.dumps
    head = (
        b'data: {"id":'
        + dumps(plan.gen_id)
        + b',"provider":'
        + dumps(plan.provider)
        + b',"model":'
        + dumps(plan.model)
        + b',"object":"chat.completion.chunk","created":'
        + str(plan.created).encode()
        + b',"choices":[{"index":0,"delta":'
    )
    deltas: list[dict[str, Any]] = []
    for piece in plan.reasoning_chunks:
        deltas.append(
            {
                "role": "assistant",
                "content": "",
                "reasoning": piece,
                "reasoning_details": [{"type": "reasoning.text", "text": piece, "format": "unknown", "index": 0}],
            }
        )
    body = [head + dumps(delta) + _OPEN_TAIL for delta in deltas]
    for i, piece in enumerate(plan.chunks):
        per_chunk = plan.logprobs[i] if plan.logprobs is not None else None
        body.append(head + dumps({"role": "assistant", "content": piece}) + _tail(per_chunk))
    deltas = []
    if plan.tool_calls:
        deltas.extend(_tool_deltas(plan.tool_calls))
    if plan.annotations:
        deltas.append({"role": "assistant", "content": "", "annotations": plan.annotations})
    if plan.images:
        deltas.append({"role": "assistant", "content": "", "images": plan.images})
    body += [head + dumps(delta) + _OPEN_TAIL for delta in deltas]
    reason = plan.finish_reason.encode()
    finish = (
        head
        + _EMPTY_DELTA
        + b',"finish_reason":"'
        + reason
        + b'","native_finish_reason":"'
        + reason
        + b'","logprobs":null}]}\n\n'
    )
    usage = head + _EMPTY_DELTA + _OPEN_TAIL[:-3] + b',"usage":' + dumps(plan.usage) + b"}\n\n"
    return StreamFrames(head=head, body=body, finish=finish, usage=usage)


def error_frame(plan: ChatPlan) -> bytes:
    """The mid-stream error event OpenRouter sends after a 200 (top-level ``error``), numeric ``code`` 502."""
    event = {
        "id": plan.gen_id,
        "provider": plan.provider,
        "model": plan.model,
        "object": "chat.completion.chunk",
        "created": plan.created,
        "error": {
            "code": 502,
            "message": "Provider disconnected unexpectedly",
            "metadata": {"error_type": "provider_unavailable", "provider_name": plan.provider},
        },
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "finish_reason": "error",
                "native_finish_reason": "error",
                "logprobs": None,
            }
        ],
    }
    return b"data: " + orjson.dumps(event) + b"\n\n"
