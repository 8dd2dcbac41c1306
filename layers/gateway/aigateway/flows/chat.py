"""The chat flow, top to bottom: validate → gate → system prompt → policy → limits → cache → key → call.

`answer` returns a finished `Answer`; `stream` returns a `ChatStream`, the open upstream stream
with the step that settles it. Shaping either for the caller belongs to the route's dialect
(api/native_shapes.py for InsForge's shapes, api/openai_shapes.py for `/api/ai/v1`). Every
dialect runs this module, so gating, the admin's system prompt, content policy, limits and
usage are the same whichever door a caller used.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .. import cache, limits, policy
from .. import request_policy as features
from ..caller_text import chat_texts
from ..credentials import ResolvedKey, with_key
from ..errors import CONTENT_BLOCKED, INVALID_INPUT, TOKEN_LIMIT_EXCEEDED, GatewayError
from ..openrouter import UpstreamStream
from ..schemas import ChatRequest, Message
from ..settings import Settings
from ..store.configs import Config
from ..store.usage import UsageRecord
from ..usage import Usage
from . import response_cache
from .common import Answer, CallContext, content_text, gate
from .metering import release, releasing, settle
from .response_cache import ReplayStream
from .stream_state import StreamState, upstream_chunks

if TYPE_CHECKING:
    from ..cache import CachePlan, StreamRecorder
    from ..limits import Admission
    from ..services import Services
    from ..store.cache import Entry


@dataclass
class PreparedChat:
    ctx: CallContext
    config: Config
    model: str
    payload: dict[str, Any]
    admission: Admission
    prompt_chars: int


def model_name(req: ChatRequest) -> str:
    """`thinking: true` asks for the model's `:thinking` variant (which must itself be enabled)."""
    if req.thinking and not req.model.endswith(":thinking"):
        return req.model + ":thinking"
    return req.model


def upstream_message(m: Message) -> dict[str, Any]:
    """One caller message as OpenRouter wants it: legacy `images` folded in, tool rules applied."""
    out: dict[str, Any] = {"role": m.role}
    content: Any = m.content
    if isinstance(content, list):
        content = [p.model_dump(exclude_none=True) for p in content]
    if m.images:
        parts: list[dict[str, Any]] = []
        if isinstance(content, str):
            parts.append({"type": "text", "text": content})
        elif isinstance(content, list):
            parts.extend(content)
        parts.extend({"type": "image_url", "image_url": {"url": i.url}} for i in m.images)
        content = parts
    if m.role == "tool":
        if not m.tool_call_id:
            raise GatewayError(INVALID_INPUT, 400, "Tool message is missing required tool_call_id")
        out["tool_call_id"] = m.tool_call_id
        if content is not None and not isinstance(content, str):
            content = orjson.dumps(content).decode()
    out["content"] = content
    if m.name:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [tc.model_dump() for tc in m.tool_calls]
    return out


def build_messages(config: Config, messages: list[Message]) -> list[dict[str, Any]]:
    """The admin's system prompt first — callers cannot remove it — then the caller's messages."""
    out = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    out.extend(upstream_message(m) for m in messages)
    return out


def check_caps(settings: Settings, req: ChatRequest) -> None:
    if req.maxTokens is not None and req.maxTokens > settings.max_completion_tokens:
        raise GatewayError(
            TOKEN_LIMIT_EXCEEDED,
            400,
            f"Exceeds configured maximum token cap: maxTokens {req.maxTokens} > {settings.max_completion_tokens}.",
            f"Ask for at most {settings.max_completion_tokens} tokens.",
        )
    if len(req.messages) > settings.max_messages:
        raise GatewayError(
            INVALID_INPUT, 400, f"Validation error: messages: at most {settings.max_messages} messages are allowed"
        )


def prompt_estimate(prompt_chars: int, messages: int) -> int:
    """Prompt tokens before the upstream counted them: 4 characters a token, 4 more a message."""
    return prompt_chars // 4 + 4 * messages


def _prompt_chars(messages: list[dict[str, Any]]) -> int:
    return sum(len(content_text(m.get("content"), " ")) for m in messages)


def check_size(svc: Services, model: str, prompt_chars: int) -> None:
    """Refuse prompts over the content cap, or clearly over the model's context window."""
    settings = svc.settings
    if prompt_chars > settings.max_content_chars:
        raise GatewayError(
            TOKEN_LIMIT_EXCEEDED,
            400,
            f"Messages hold {prompt_chars} characters; the limit is {settings.max_content_chars}.",
            "Shorten the conversation.",
        )
    window = svc.catalog.peek_context_length(model)
    estimate = prompt_chars // 4
    if window is not None and estimate > window:
        raise GatewayError(
            TOKEN_LIMIT_EXCEEDED,
            400,
            f"The prompt (about {estimate} tokens) is longer than {model}'s context window of {window} tokens.",
            "Shorten the conversation or use a model with a longer context.",
        )


def upstream_payload(
    req: ChatRequest, model: str, messages: list[dict[str, Any]], config: Config, max_tokens: int
) -> dict[str, Any]:
    """OpenRouter's payload: camelCase fields mapped, usage always requested (plugins: `plugins`)."""
    p: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "temperature": 0.7 if req.temperature is None else req.temperature,
        "max_tokens": max_tokens,
    }
    if req.topP is not None:
        p["top_p"] = req.topP
    if req.stream:
        p["stream"] = True
        p["stream_options"] = {"include_usage": True}
    if req.tools:
        p["tools"] = [t.model_dump(exclude_none=True) for t in req.tools]
    if req.toolChoice is not None:
        p["tool_choice"] = req.toolChoice if isinstance(req.toolChoice, str) else req.toolChoice.model_dump()
    if req.parallelToolCalls is not None:
        p["parallel_tool_calls"] = req.parallelToolCalls
    if config.fallback_models:
        p["models"] = [m for m in config.fallback_models if m != model]
    return p


def plugins(
    rules: features.RequestPolicy, config: Config, req: ChatRequest, extra: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every plugin of the call, each within the configuration's request policy, then moderation."""
    out = features.native_plugins(rules, req)
    out.extend(features.caller_plugins(rules, extra.pop("plugins", None) or []))
    if features.has_files(req.messages):
        out.extend(features.implicit_file_parser(rules, out))
    out.extend(policy.upstream_plugins(config.content_policy))
    return out


def allowed_extra(rules: features.RequestPolicy, extra: dict[str, Any] | None, max_tokens: int) -> dict[str, Any]:
    """The OpenAI dialect's pass-through fields the policy lets through (`plugins` included, checked later)."""
    out = dict(extra or {})
    if not rules.forwardUser:
        out.pop("user", None)
    if isinstance(out.get("reasoning"), dict):
        out["reasoning"] = features.clamp_reasoning(out["reasoning"], max_tokens)
    return out


async def prepare(
    svc: Services, ctx: CallContext, req: ChatRequest, extra: dict[str, Any] | None = None
) -> PreparedChat:
    """Every check before the upstream call; raises GatewayError with the contract's code."""
    check_caps(svc.settings, req)
    model = model_name(req)
    config = await gate(svc, model)
    rules = features.rules(config)
    features.require_route(config, "chat")
    features.check_parts(config, req.messages)
    features.check_system_messages(rules, config, req.messages)
    max_tokens = features.max_tokens(rules, svc.settings, req)
    passed = allowed_extra(rules, extra, max_tokens)
    call_plugins = plugins(rules, config, req, passed)
    messages = build_messages(config, req.messages)
    prompt_chars = _prompt_chars(messages)
    check_size(svc, model, prompt_chars)
    if policy.scans(config.content_policy):
        await policy.check_content(
            svc, ctx.principal, ctx.ip, config_id=config.id, policy=config.content_policy, texts=chat_texts(req, extra)
        )
    hold = limits.hold_for(svc, model, prompt_estimate(prompt_chars, len(messages)), max_tokens)
    admission = await limits.admit(svc, ctx.principal, ctx.ip, model=model, kind="chat", hold=hold)
    payload = upstream_payload(req, model, messages, config, max_tokens)
    if call_plugins:
        payload["plugins"] = call_plugins
    payload.update({k: v for k, v in passed.items() if k not in payload})
    return PreparedChat(ctx, config, model, payload, admission, prompt_chars)


async def complete(svc: Services, prep: PreparedChat) -> tuple[dict[str, Any], ResolvedKey]:
    headers = prep.ctx.upstream_headers
    try:
        return await with_key(
            svc.keys, svc.settings, lambda k: svc.upstream.chat(k.key, prep.payload, extra_headers=headers)
        )
    except GatewayError as err:
        await _audit_if_moderated(svc, prep, err)
        raise


async def open_stream(svc: Services, prep: PreparedChat) -> tuple[UpstreamStream, ResolvedKey]:
    headers = prep.ctx.upstream_headers
    try:
        return await with_key(
            svc.keys, svc.settings, lambda k: svc.upstream.open_stream(k.key, prep.payload, extra_headers=headers)
        )
    except GatewayError as err:
        await _audit_if_moderated(svc, prep, err)
        raise


async def _audit_if_moderated(svc: Services, prep: PreparedChat, err: GatewayError) -> None:
    """A refusal by the upstream's moderation is audited like our own deny-list blocks."""
    if err.code == CONTENT_BLOCKED:
        await policy.audit_upstream_block(
            svc, prep.ctx.principal, prep.ctx.ip, config_id=prep.config.id, model=prep.model
        )


def usage_record(
    prep: PreparedChat,
    key: ResolvedKey,
    *,
    served_model: str | None,
    usage: Usage | None,
    completion_chars: int = 0,
) -> UsageRecord:
    """The row for one chat call. Without upstream usage (a stream cut short) tokens are estimated."""
    if usage is not None:
        prompt, completion = usage.prompt, usage.completion
    else:
        prompt, completion = max(1, prep.prompt_chars // 4), (completion_chars + 3) // 4
    return UsageRecord(
        request_id=prep.ctx.request_id,
        model_id=served_model or prep.model,
        kind="chat",
        config_id=prep.config.id,
        input_tokens=prompt,
        output_tokens=completion,
        user_id=prep.ctx.principal.user_id,
        cost_usd=usage.cost_usd if usage else None,
        key_source=key.source,
        latency_ms=int((time.perf_counter() - prep.ctx.started) * 1000),
    )


async def answer(
    svc: Services, ctx: CallContext, req: ChatRequest, extra: dict[str, Any] | None = None
) -> Answer[dict[str, Any]]:
    """A plain (non-streamed) chat call: every check, the cache or the upstream call, and the row that bills it."""
    prep = await prepare(svc, ctx, req, extra)
    plan = response_cache.chat_plan(prep, req.cache)
    hit = await response_cache.lookup(svc, plan)
    if hit is not None:
        answer = cache.decode_answer(hit.body)
        record = response_cache.chat_hit_record(prep, hit)
        return Answer(answer, prep.model, ctx.request_id, record, prep.admission, cache.HIT)
    upstream, key = await releasing(svc, prep.admission, complete(svc, prep))
    served = upstream.get("model")
    record = usage_record(
        prep, key, served_model=served if isinstance(served, str) else None, usage=Usage.read(upstream.get("usage"))
    )
    await response_cache.store_answer(svc, plan, prep, upstream, record)
    return Answer(upstream, prep.model, ctx.request_id, record, prep.admission, response_cache.status(plan))


async def stream(svc: Services, ctx: CallContext, req: ChatRequest, extra: dict[str, Any] | None = None) -> ChatStream:
    """A streamed chat call: every check, then the open upstream stream (nothing relayed yet), or
    the stored answer replayed as one."""
    prep = await prepare(svc, ctx, req, extra)
    plan = response_cache.chat_plan(prep, req.cache)
    hit = await response_cache.lookup(svc, plan)
    if hit is not None:
        return ChatStream(svc, prep, ReplayStream(hit), None, replay=hit, cache_status=cache.HIT)
    upstream, key = await releasing(svc, prep.admission, open_stream(svc, prep))
    recorder = cache.StreamRecorder() if plan is not None and plan.store else None
    return ChatStream(svc, prep, upstream, key, plan=plan, recorder=recorder, cache_status=response_cache.status(plan))


@dataclass
class ChatStream:
    """An open upstream stream: its chunks for a dialect to frame, and the step that settles it.

    The dialect iterates `chunks()`, marks `state.done` once it relayed everything, and calls
    `finish()` however the stream ends (finished, failed, or the caller hung up); `finish` runs
    once. It closes the upstream (or keeps the connection for reuse after a complete relay) and
    records what was generated: upstream usage when it arrived, an estimate otherwise.
    """

    svc: Services
    prep: PreparedChat
    upstream: UpstreamStream | ReplayStream
    key: ResolvedKey | None  # None for a replayed cache hit
    # The cache's part (flows/response_cache.py): the entry a hit replays, or the plan and the
    # recorder that store a miss's answer once it streamed to its end.
    replay: Entry | None = None
    plan: CachePlan | None = None
    recorder: StreamRecorder | None = None
    cache_status: str | None = None
    state: StreamState = field(default_factory=StreamState)
    _finished: bool = False

    @property
    def model(self) -> str:
        return self.prep.model

    @property
    def request_id(self) -> str:
        return self.prep.ctx.request_id

    @property
    def admission(self) -> Admission:
        return self.prep.admission

    def chunks(self) -> AsyncIterator[dict[str, Any] | None]:
        """Upstream chunks as they arrive (None for a keep-alive) until the end or a failure."""
        chunks = upstream_chunks(self.upstream, self.state)
        return chunks if self.recorder is None else response_cache.recording(chunks, self.recorder)

    async def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        state = self.state
        if self.replay is not None:
            await settle(self.svc, self.prep.admission, response_cache.chat_hit_record(self.prep, self.replay))
            return
        if state.done:
            await self.upstream.release()  # relayed to the end: the connection can serve the next call
        else:
            self.upstream.close()  # failed or abandoned: closing tells the upstream to stop generating
        if state.usage is None and state.chars == 0 and state.error is not None:
            await release(self.svc, self.prep.admission)  # nothing generated: nothing to bill or hold
            return
        assert self.key is not None  # only a replay has no key
        record = usage_record(
            self.prep, self.key, served_model=state.served_model, usage=state.usage, completion_chars=state.chars
        )
        await settle(self.svc, self.prep.admission, record)
        if state.done and state.error is None and self.recorder is not None:
            await response_cache.store_answer(self.svc, self.plan, self.prep, self.recorder.answer(), record)
