"""Embeddings (spec §6, CONTRACT §3): validate → gate → policy → limits → call → shape → record.

Decisions, where spec §6 (InsForge G1) and the product differ:
- Gating: G1 serves any embedding model and looks a configuration up only to attribute usage.
  The gateway gates embeddings like chat and images (400 `AI_INVALID_MODEL` unless an admin
  enabled the model): the product promise is that callers use only the models the admin
  enabled, and CONTRACT §1 says every generation route shares the same gating. Enable embedding
  models with `outputModality: ["embeddings"]`.
- Inputs: a string or a list of strings; the list holds 1..`MAX_EMBEDDING_INPUTS` items and no
  input may be empty (OpenAI's embedding models refuse empty strings, so failing here gives the
  caller a message naming the input instead of an upstream 400). `dimensions: 0` is refused too.
- The admin's content policy (deny patterns) applies to the inputs, as to every prompt sent
  upstream. OpenRouter's moderation plugin is a chat-completions feature, so `moderation: true`
  adds nothing to an embeddings call; an upstream moderation refusal is still audited.

The answer's `data` is the upstream's list, passed through without re-encoding its floats through
pydantic: embeddings are large and orjson (api/responses.JSON) writes them directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.background import BackgroundTask
from starlette.responses import Response

from .. import limits, policy
from ..api.responses import JSON
from ..credentials import ResolvedKey, with_key
from ..errors import CONTENT_BLOCKED, GatewayError, invalid_input
from ..schemas import EmbeddingsRequest
from ..settings import Settings
from ..store.configs import Config
from ..store.usage import UsageRecord
from .common import CallContext, cost_of, gate, settle

if TYPE_CHECKING:
    from ..limits import Admission
    from ..services import Services


@dataclass
class PreparedEmbeddings:
    ctx: CallContext
    config: Config
    model: str
    payload: dict[str, Any]
    admission: Admission
    inputs: int


def check_inputs(settings: Settings, req: EmbeddingsRequest) -> list[str]:
    """The inputs as a list, after the caps above; 400 INVALID_INPUT naming the field otherwise."""
    texts = [req.input] if isinstance(req.input, str) else req.input
    if not texts:
        raise invalid_input("Validation error: input: must hold at least one string")
    if len(texts) > settings.max_embedding_inputs:
        raise invalid_input(
            f"Validation error: input: at most {settings.max_embedding_inputs} inputs per request "
            f"(got {len(texts)})",
            "Split the inputs over several requests.",
        )
    for i, text in enumerate(texts):
        if not text:
            where = "input" if isinstance(req.input, str) else f"input.{i}"
            raise invalid_input(f"Validation error: {where}: must not be empty")
    if req.dimensions is not None and req.dimensions < 1:
        raise invalid_input("Validation error: dimensions: must be at least 1")
    return texts


def upstream_payload(req: EmbeddingsRequest) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": req.model,
        "input": req.input,
        "encoding_format": req.encoding_format or "float",
    }
    if req.dimensions is not None:
        payload["dimensions"] = req.dimensions
    return payload


async def prepare(svc: Services, ctx: CallContext, req: EmbeddingsRequest) -> PreparedEmbeddings:
    """Every check before the upstream call; raises GatewayError with the contract's code."""
    texts = check_inputs(svc.settings, req)
    config = await gate(svc, req.model)
    await policy.check_content(
        svc, ctx.principal, ctx.ip, config_id=config.id, policy=config.content_policy, texts=texts
    )
    admission = await limits.admit(svc, ctx.principal, ctx.ip, model=req.model, kind="embedding")
    return PreparedEmbeddings(ctx, config, req.model, upstream_payload(req), admission, len(texts))


async def call(svc: Services, prep: PreparedEmbeddings) -> tuple[dict[str, Any], ResolvedKey]:
    headers = prep.ctx.upstream_headers
    try:
        return await with_key(
            svc.keys,
            svc.settings,
            lambda k: svc.upstream.embeddings(k.key, prep.payload, extra_headers=headers),
        )
    except GatewayError as err:
        if err.code == CONTENT_BLOCKED:
            await policy.audit_upstream_block(
                svc, prep.ctx.principal, prep.ctx.ip, config_id=prep.config.id, model=prep.model
            )
        raise


def tokens(usage: Any) -> tuple[int, int]:
    """(prompt tokens, total tokens) of an upstream usage object; zeros when missing."""
    if not isinstance(usage, dict):
        return 0, 0
    prompt = int(usage.get("prompt_tokens") or 0)
    return prompt, int(usage.get("total_tokens") or prompt)


def served_model(upstream: dict[str, Any], prep: PreparedEmbeddings) -> str:
    model = upstream.get("model")
    return model if isinstance(model, str) and model else prep.model


def native_body(upstream: dict[str, Any], prep: PreparedEmbeddings) -> dict[str, Any]:
    """spec §6: `metadata.model` is the model the upstream says served, usage in camelCase."""
    prompt, total = tokens(upstream.get("usage"))
    return {
        "object": "list",
        "data": upstream["data"],
        "metadata": {
            "model": served_model(upstream, prep),
            "usage": {"promptTokens": prompt, "totalTokens": total},
        },
    }


def usage_record(prep: PreparedEmbeddings, upstream: dict[str, Any], key: ResolvedKey) -> UsageRecord:
    usage = upstream.get("usage")
    prompt, total = tokens(usage)
    return UsageRecord(
        request_id=prep.ctx.request_id,
        model_id=served_model(upstream, prep),
        kind="embedding",
        config_id=prep.config.id,
        input_tokens=prompt,
        output_tokens=max(0, total - prompt),
        user_id=prep.ctx.principal.user_id,
        cost_usd=cost_of(usage),
        key_source=key.source,
        latency_ms=int((time.perf_counter() - prep.ctx.started) * 1000),
    )


async def embeddings(svc: Services, ctx: CallContext, req: EmbeddingsRequest) -> Response:
    prep = await prepare(svc, ctx, req)
    upstream, key = await call(svc, prep)
    record = usage_record(prep, upstream, key)
    return JSON(
        native_body(upstream, prep),
        headers=prep.admission.headers,
        background=BackgroundTask(settle, svc, prep.admission, record),
    )
