"""The OpenAI dialect of the gateway (`/api/ai/v1`): request conversion, answer and chunk shapes, errors.

Nothing here decides *whether* a call may happen: an OpenAI-shaped chat request is converted
into the native `schemas.ChatRequest` and goes through `flows.chat.prepare` like any other, so
auth, gating, the admin's system prompt, content policy, limits and usage are the native ones.
This module only translates at the edges:

* request: `max_completion_tokens`/`max_tokens` → `maxTokens`, `top_p` → `topP`, `tool_choice`,
  `parallel_tool_calls`; `developer` messages become `system` ones; sampling fields the native
  schema does not know (`stop`, `seed`, penalties, `response_format`, `user`, `plugins`,
  `reasoning`, ...) pass through to the upstream unchanged; `n` must be 1.
* answer: an OpenAI `chat.completion` object; streams relay every upstream chunk as a
  `chat.completion.chunk` frame the moment it arrives, then (only when the caller asked with
  `stream_options.include_usage`) a usage chunk with empty `choices`, then `data: [DONE]`.
* errors: OpenAI SDKs read `body["error"]["message"]` and raise by HTTP status, so the error
  body here carries an `error` *object* `{message, type, code, param}` (`code` = the contract's
  code, `type` = OpenAI's error type for the status) and also the contract's flat `message`,
  `statusCode` and `nextActions` keys. Statuses are CONTRACT §5's. A failure after the stream
  started is one `data: {"error": {...}}` frame, then the stream ends without `[DONE]`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.background import BackgroundTask
from starlette.responses import Response

from .. import sse
from ..api.responses import JSON, SSEResponse
from ..errors import INVALID_INPUT, GatewayError, invalid_input
from ..openrouter import UpstreamStream
from ..schemas import ChatRequest, EmbeddingsRequest, Message, ModelId, Tool, ToolChoiceNamed
from . import chat
from . import embeddings as native_embeddings
from .chat_native import KEEPALIVE, SSE_HEADERS, finish_stream
from .common import CallContext, settle
from .stream_state import StreamState, ToolCallAssembler, upstream_chunks

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger(__name__)

DONE_FRAME = b"data: [DONE]\n\n"


# -- request -------------------------------------------------------------------------------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OpenAIMessage(Message):
    """An OpenAI chat message: the native message plus the `developer` role (sent as `system`)."""

    @model_validator(mode="before")
    @classmethod
    def _developer_is_system(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("role") == "developer":
            return {**data, "role": "system"}
        return data


class StreamOptions(_Lenient):
    include_usage: bool | None = None


class OpenAIChatRequest(_Lenient):
    """`POST /api/ai/v1/chat/completions` as the OpenAI SDKs send it (unknown keys dropped)."""

    model: ModelId
    messages: list[OpenAIMessage]
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | ToolChoiceNamed | None = None
    parallel_tool_calls: bool | None = None
    # Passed to the upstream as given.
    response_format: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    user: Annotated[str, StringConstraints(max_length=256)] | None = None
    # OpenRouter extras.
    plugins: list[dict[str, Any]] | None = None
    reasoning: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    top_k: int | None = None
    min_p: float | None = None
    top_a: float | None = None
    repetition_penalty: float | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


PASS_THROUGH = (
    "response_format",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "plugins",
    "reasoning",
    "reasoning_effort",
    "top_k",
    "min_p",
    "top_a",
    "repetition_penalty",
)


def to_native(req: OpenAIChatRequest) -> tuple[ChatRequest, dict[str, Any]]:
    """The native request the chat flow runs, and the upstream fields passed through as given."""
    if req.n is not None and req.n != 1:
        raise invalid_input("Validation error: n: only n=1 is supported", "Send n=1 (or leave it out).")
    if isinstance(req.stop, list) and len(req.stop) > 4:
        raise invalid_input("Validation error: stop: at most 4 stop sequences are allowed")
    native = ChatRequest(
        model=req.model,
        messages=list(req.messages),
        temperature=req.temperature,
        maxTokens=req.max_completion_tokens or req.max_tokens,
        topP=req.top_p,
        stream=bool(req.stream),
        tools=req.tools,
        toolChoice=req.tool_choice,
        parallelToolCalls=req.parallel_tool_calls,
    )
    extra = {k: getattr(req, k) for k in PASS_THROUGH if getattr(req, k) is not None}
    return native, extra


# -- answers -------------------------------------------------------------------------------------


def openai_usage(usage: Any) -> dict[str, Any] | None:
    """OpenAI's usage object; token details kept, OpenRouter's cost fields left out."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }
    for key in ("prompt_tokens_details", "completion_tokens_details"):
        if isinstance(usage.get(key), dict):
            out[key] = usage[key]
    return out


def _completion_id(upstream_id: Any, ctx: CallContext) -> str:
    return upstream_id if isinstance(upstream_id, str) and upstream_id else f"chatcmpl-{ctx.request_id}"


def _created(value: Any) -> int:
    return value if isinstance(value, int) else int(time.time())


def completion_body(upstream: dict[str, Any], prep: chat.PreparedChat) -> dict[str, Any]:
    """The upstream answer as an OpenAI `chat.completion` (first choice: the gateway asks for one)."""
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
        "id": _completion_id(upstream.get("id"), prep.ctx),
        "object": "chat.completion",
        "created": _created(upstream.get("created")),
        "model": upstream.get("model") or prep.model,
        "choices": [{"index": 0, "message": out_msg, "logprobs": choice.get("logprobs"), "finish_reason": finish}],
    }
    if isinstance(upstream.get("system_fingerprint"), str):
        body["system_fingerprint"] = upstream["system_fingerprint"]
    usage = openai_usage(upstream.get("usage"))
    if usage:
        body["usage"] = usage
    return body


async def chat_completions(svc: Services, ctx: CallContext, req: OpenAIChatRequest) -> Response:
    native, extra = to_native(req)
    prep = await chat.prepare(svc, ctx, native, extra=extra)
    if native.stream:
        stream, key = await chat.open_stream(svc, prep)
        state = StreamState()
        return SSEResponse(
            relay(stream, state, prep, include_usage=req.include_usage),
            headers={**SSE_HEADERS, **prep.admission.headers},
            on_close=partial(finish_stream, svc, prep, stream, state, key),
        )
    upstream, key = await chat.complete(svc, prep)
    record = chat.usage_record(prep, key, served_model=upstream.get("model"), usage=upstream.get("usage"))
    return JSON(
        completion_body(upstream, prep),
        headers=prep.admission.headers,
        background=BackgroundTask(settle, svc, prep.admission, record),
    )


_CHOICE_KEYS = ("index", "delta", "logprobs", "finish_reason")


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
    """The mid-stream failure frame the OpenAI SDKs raise on (`data: {"error": {...}}`)."""
    return sse.frame(
        {
            "error": {
                "message": message,
                "type": "server_error",
                "code": "AI_UPSTREAM_UNAVAILABLE",
                "param": None,
            }
        }
    )


async def relay(
    stream: UpstreamStream, state: StreamState, prep: chat.PreparedChat, *, include_usage: bool
) -> AsyncIterator[bytes]:
    """Upstream chunks → `chat.completion.chunk` frames, one per upstream chunk, as each arrives."""
    chunk_id: str | None = stream.generation_id
    created: int | None = None
    async for chunk in upstream_chunks(stream, state):
        if chunk is None:
            yield KEEPALIVE
            continue
        state.absorb(chunk)
        chunk_id = chunk_id or _completion_id(chunk.get("id"), prep.ctx)
        created = created or _created(chunk.get("created"))
        choices = _chunk_choices(chunk)
        if "usage" in chunk and _carries_nothing(choices):
            continue  # usage-only: its numbers go out in the final usage chunk
        out: dict[str, Any] = {
            "id": chunk_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": chunk.get("model") or prep.model,
            "choices": choices,
        }
        if include_usage:
            out["usage"] = None
        yield sse.frame(out)
    if state.error is not None:
        yield stream_error(f"Failed to stream response: {state.error}")
        return
    if include_usage:
        yield sse.frame(
            {
                "id": chunk_id or _completion_id(None, prep.ctx),
                "object": "chat.completion.chunk",
                "created": created or int(time.time()),
                "model": state.served_model or prep.model,
                "choices": [],
                "usage": openai_usage(state.usage) or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        )
    state.done = True
    yield DONE_FRAME


# -- embeddings ----------------------------------------------------------------------------------


async def embeddings(svc: Services, ctx: CallContext, req: EmbeddingsRequest) -> Response:
    """The native embeddings flow, answered in OpenAI's shape (`usage` snake_case, top-level `model`)."""
    prep = await native_embeddings.prepare(svc, ctx, req)
    upstream, key = await native_embeddings.call(svc, prep)
    prompt, total = native_embeddings.tokens(upstream.get("usage"))
    body = {
        "object": "list",
        "data": upstream["data"],
        "model": native_embeddings.served_model(upstream, prep),
        "usage": {"prompt_tokens": prompt, "total_tokens": total},
    }
    record = native_embeddings.usage_record(prep, upstream, key)
    return JSON(body, headers=prep.admission.headers, background=BackgroundTask(settle, svc, prep.admission, record))


# -- models --------------------------------------------------------------------------------------


async def list_models(svc: Services) -> dict[str, Any]:
    """The enabled configurations — what a caller may use — as OpenAI's model list."""
    rows = await svc.db.fetch("SELECT model_id, created_at FROM {s}.configs WHERE is_active ORDER BY model_id")
    return {
        "object": "list",
        "data": [
            {
                "id": r["model_id"],
                "object": "model",
                "created": int(r["created_at"].timestamp()),
                "owned_by": r["model_id"].split("/", 1)[0] if "/" in r["model_id"] else "openrouter",
            }
            for r in rows
        ],
    }


# -- errors --------------------------------------------------------------------------------------

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def error_type(status: int) -> str:
    """OpenAI's `error.type` for an HTTP status."""
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(err: GatewayError) -> dict[str, Any]:
    """OpenAI's `{"error": {message, type, code, param}}` plus the contract's flat keys."""
    body: dict[str, Any] = {
        "error": {"message": err.message, "type": error_type(err.status), "code": err.code, "param": None},
        "message": err.message,
        "statusCode": err.status,
    }
    if err.next_actions:
        body["nextActions"] = err.next_actions
    return body


def error_response(err: GatewayError, request_id: str | None = None) -> JSON:
    headers = dict(err.headers)
    if request_id:
        headers["x-request-id"] = request_id
    return JSON(error_body(err), status_code=err.status, headers=headers)


def validation_error(message: str, malformed_json: bool) -> GatewayError:
    if malformed_json:
        return GatewayError(
            INVALID_INPUT,
            400,
            "Malformed JSON in request body",
            "Please ensure your request body contains valid JSON",
        )
    return GatewayError(INVALID_INPUT, 400, message)
