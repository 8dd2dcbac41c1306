"""Embeddings: validate → gate → policy → limits → call → the row that bills it.

Decisions where the gateway differs from InsForge's original AI layer:
- Gating: the original served any embedding model and looked a configuration up only to
  attribute usage. The gateway gates embeddings like chat and images (400 `AI_INVALID_MODEL`
  unless an admin enabled the model): callers use only the models the admin enabled
  (docs/adr/ records why). Enable embedding models with `outputModality: ["embeddings"]`.
- Inputs: a string or a list of strings; the list holds 1..`MAX_EMBEDDING_INPUTS` items and no
  input may be empty (OpenAI's embedding models refuse empty strings, so failing here gives the
  caller a message naming the input instead of an upstream 400). `dimensions: 0` is refused too.
- The admin's content policy (deny patterns) applies to the inputs, as to every prompt sent
  upstream. OpenRouter's moderation plugin is a chat-completions feature, so `moderation: true`
  adds nothing to an embeddings call; an upstream moderation refusal is still audited.

The answer's `data` is the upstream's list, passed on without re-encoding its floats through
pydantic: embeddings are large and the response encoder (orjson) writes them directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import limits, policy
from ..credentials import ResolvedKey, with_key
from ..errors import CONTENT_BLOCKED, GatewayError, invalid_input
from ..schemas import EmbeddingsRequest
from ..settings import Settings
from ..store.configs import Config
from ..store.usage import UsageRecord
from ..usage import Usage
from .common import Answer, CallContext, gate
from .metering import releasing

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
            f"Validation error: input: at most {settings.max_embedding_inputs} inputs per request (got {len(texts)})",
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
    hold = limits.hold(svc, req.model, sum(len(t) for t in texts) // 4 + 4 * len(texts), 0)
    admission = await limits.admit(svc, ctx.principal, ctx.ip, model=req.model, kind="embedding", hold=hold)
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


def served_model(upstream: dict[str, Any], requested: str) -> str:
    """The model the upstream says served the call (it may be a fallback), else the one asked for."""
    model = upstream.get("model")
    return model if isinstance(model, str) and model else requested


def usage_record(prep: PreparedEmbeddings, upstream: dict[str, Any], key: ResolvedKey) -> UsageRecord:
    usage = Usage.read(upstream.get("usage")) or Usage()
    return UsageRecord(
        request_id=prep.ctx.request_id,
        model_id=served_model(upstream, prep.model),
        kind="embedding",
        config_id=prep.config.id,
        input_tokens=usage.prompt,
        output_tokens=max(0, usage.total - usage.prompt),
        user_id=prep.ctx.principal.user_id,
        cost_usd=usage.cost_usd,
        key_source=key.source,
        latency_ms=int((time.perf_counter() - prep.ctx.started) * 1000),
    )


async def embeddings(svc: Services, ctx: CallContext, req: EmbeddingsRequest) -> Answer[dict[str, Any]]:
    prep = await prepare(svc, ctx, req)
    upstream, key = await releasing(svc, prep.admission, call(svc, prep))
    return Answer(upstream, prep.model, ctx.request_id, usage_record(prep, upstream, key), prep.admission)
