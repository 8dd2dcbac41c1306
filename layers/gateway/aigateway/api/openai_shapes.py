"""OpenAI's shapes for `/api/ai/v1`: `chat.completion`, `chat.completion.chunk` frames, embeddings, models.

Streams relay every upstream chunk as a `chat.completion.chunk` frame the moment it arrives,
then (only when the caller asked with `stream_options.include_usage`) a usage chunk with empty
`choices`, then `data: [DONE]`. A failure after the stream started is one
`data: {"error": {...}}` frame (the OpenAI SDKs raise on it), and the stream ends without `[DONE]`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from .. import sse
from ..errors import AI_UPSTREAM_UNAVAILABLE, GatewayError
from ..flows.chat import ChatStream
from ..flows.common import Answer
from ..flows.embeddings import served_model
from ..flows.stream_state import ToolCallAssembler
from ..store.configs import ActiveModel
from ..usage import Usage
from .failures import error_body
from .responses import KEEPALIVE

DONE_FRAME = b"data: [DONE]\n\n"
_CHOICE_KEYS = ("index", "delta", "logprobs", "finish_reason")


def openai_usage(usage: Usage | None) -> dict[str, Any] | None:
    """OpenAI's usage object; token details kept, OpenRouter's cost fields left out."""
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.total,
        **usage.details,
    }


def _completion_id(upstream_id: Any, request_id: str) -> str:
    return upstream_id if isinstance(upstream_id, str) and upstream_id else f"chatcmpl-{request_id}"


def _created(value: Any) -> int:
    return value if isinstance(value, int) else int(time.time())


def chat_body(answer: Answer[dict[str, Any]]) -> dict[str, Any]:
    """The upstream answer as an OpenAI `chat.completion` (first choice: the gateway asks for one)."""
    upstream = answer.result
    choice = (upstream.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # a few providers answer in parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    out_msg: dict[str, Any] = {"role": "assistant", "content": content, "refusal": message.get("refusal")}
    calls = ToolCallAssembler()
    for i, tc in enumerate(message.get("tool_calls") or ()):
        if isinstance(tc, dict) and tc.get("type", "function") == "function":
            calls.add({**tc, "index": i})
    if calls.calls:
        out_msg["tool_calls"] = calls.result()
    for key in ("annotations", "reasoning", "reasoning_details", "images"):
        if message.get(key):
            out_msg[key] = message[key]
    finish = choice.get("finish_reason") or ("tool_calls" if calls.calls else "stop")
    body: dict[str, Any] = {
        "id": _completion_id(upstream.get("id"), answer.request_id),
        "object": "chat.completion",
        "created": _created(upstream.get("created")),
        "model": upstream.get("model") or answer.model,
        "choices": [{"index": 0, "message": out_msg, "logprobs": choice.get("logprobs"), "finish_reason": finish}],
    }
    if isinstance(upstream.get("system_fingerprint"), str):
        body["system_fingerprint"] = upstream["system_fingerprint"]
    usage = openai_usage(Usage.read(upstream.get("usage")))
    if usage:
        body["usage"] = usage
    return body


def _chunk_choices(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """The chunk's choices in OpenAI's shape (OpenRouter's `native_finish_reason` etc. dropped)."""
    out = []
    for choice in chunk.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        item = {k: choice[k] for k in _CHOICE_KEYS if k in choice}
        item.setdefault("index", 0)
        item.setdefault("delta", {})
        item.setdefault("finish_reason", None)
        out.append(item)
    return out


def _carries_nothing(choices: list[dict[str, Any]]) -> bool:
    """True for OpenRouter's usage-only chunk (one choice with an empty delta and no finish)."""
    for c in choices:
        delta = c.get("delta") or {}
        if c.get("finish_reason") or c.get("logprobs"):
            return False
        if any(v not in (None, "", [], {}) for k, v in delta.items() if k != "role"):
            return False
    return True


def stream_error(message: str) -> bytes:
    """The mid-stream failure frame the OpenAI SDKs raise on (`data: {"error": {...}}`): the same
    error object as failures.py renders for a 502 before the stream started."""
    failure = GatewayError(AI_UPSTREAM_UNAVAILABLE, 502, message)
    return sse.frame({"error": error_body(failure, "openai")["error"]})


async def chat_frames(stream: ChatStream, *, include_usage: bool) -> AsyncIterator[bytes]:
    """Upstream chunks → `chat.completion.chunk` frames, one per upstream chunk, as each arrives."""
    state = stream.state
    chunk_id: str | None = stream.upstream.generation_id
    created: int | None = None
    async for chunk in stream.chunks():
        if chunk is None:
            yield KEEPALIVE
            continue
        state.absorb(chunk)
        chunk_id = chunk_id or _completion_id(chunk.get("id"), stream.request_id)
        created = created or _created(chunk.get("created"))
        choices = _chunk_choices(chunk)
        if "usage" in chunk and _carries_nothing(choices):
            continue  # usage-only: its numbers go out in the final usage chunk
        out: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chunk.get("model") or stream.model,
            "choices": choices,
        }
        if include_usage:
            out["usage"] = None
        yield sse.frame(out)
    if state.error is not None:
        await stream.finish()
        yield stream_error(f"Failed to stream response: {state.error}")
        return
    state.done = True
    await stream.finish()  # counted before the caller sees the end
    if include_usage:
        yield sse.frame(
            {
                "id": chunk_id or _completion_id(None, stream.request_id),
                "object": "chat.completion.chunk",
                "created": created or int(time.time()),
                "model": state.served_model or stream.model,
                "choices": [],
                "usage": openai_usage(state.usage or Usage()),
            }
        )
    yield DONE_FRAME


def embeddings_body(answer: Answer[dict[str, Any]]) -> dict[str, Any]:
    """The embeddings answer in OpenAI's shape (`usage` snake_case, top-level `model`)."""
    usage = Usage.read(answer.result.get("usage")) or Usage()
    return {
        "object": "list",
        "data": answer.result["data"],
        "model": served_model(answer.result, answer.model),
        "usage": {"prompt_tokens": usage.prompt, "total_tokens": usage.total},
    }


def model_object(m: ActiveModel) -> dict[str, Any]:
    """One enabled configuration as OpenAI's model object (`owned_by` = the id's provider prefix)."""
    return {
        "id": m.model_id,
        "object": "model",
        "created": int(m.created_at.timestamp()),
        "owned_by": m.model_id.split("/", 1)[0] if "/" in m.model_id else "openrouter",
    }


def models_body(models: list[ActiveModel]) -> dict[str, Any]:
    """The enabled configurations — what a caller may use — as OpenAI's model list."""
    return {"object": "list", "data": [model_object(m) for m in models]}
