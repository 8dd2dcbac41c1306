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

- Answer size: where a buffered response is capped (`max_response_bytes`, Lambda's 6 MB), a request
  whose answer could exceed the cap is refused before the upstream call (413 `RESPONSE_TOO_LARGE`,
  nothing billed), from its worst case: inputs × dimensions × the longest a value can be written
  (25 bytes as a JSON float, 4/3 × 4 bytes in base64). Refusing afterwards would bill a call the
  caller never gets; the worst case never under-counts. Base64 answers are ~5× smaller, and the
  OpenAI SDKs ask for base64 by default.

The answer's `data` is the upstream's list, passed on without re-encoding its floats through
pydantic: embeddings are large and the response encoder (orjson) writes them directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import cache, limits, policy
from .. import request_policy as features
from ..credentials import ResolvedKey, with_key
from ..errors import CONTENT_BLOCKED, RESPONSE_TOO_LARGE, GatewayError, invalid_input
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
    texts: list[str]  # the inputs as checked (a lone string as a list of one)


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


# Output sizes of the embedding models the gateway knows; others are assumed as wide as the widest
# common model, so the bound below holds for them too.
KNOWN_DIMENSIONS = {
    "openai/text-embedding-3-small": 1536,
    "openai/text-embedding-3-large": 3072,
    "openai/text-embedding-ada-002": 1536,
}
DEFAULT_DIMENSIONS = 4096
FLOAT_BYTES = 25  # "-1.2345678901234567e-308," : the longest a float64 is written, with its comma
ITEM_BYTES = 64  # {"object":"embedding","index":2047,"embedding":[...]},
ENVELOPE_BYTES = 1024  # object, model, usage and the id around the list


def worst_case_bytes(req: EmbeddingsRequest, inputs: int) -> int:
    """The largest the JSON answer can be for this request."""
    dims = req.dimensions or KNOWN_DIMENSIONS.get(req.model, DEFAULT_DIMENSIONS)
    if req.encoding_format == "base64":
        per_vector = 4 * -(-(dims * 4) // 3) + 2  # base64 of dims float32 values, quoted
    else:
        per_vector = dims * FLOAT_BYTES
    return ENVELOPE_BYTES + inputs * (ITEM_BYTES + per_vector)


def check_answer_fits(settings: Settings, req: EmbeddingsRequest, inputs: int) -> None:
    """413 RESPONSE_TOO_LARGE when the answer could exceed the buffered response cap."""
    cap = settings.max_response_bytes
    if cap and worst_case_bytes(req, inputs) > cap:
        fits = max(1, (cap - ENVELOPE_BYTES) // (worst_case_bytes(req, 1) - ENVELOPE_BYTES))
        hint = "" if req.encoding_format == "base64" else ' or ask for "encoding_format": "base64" (about 5x smaller)'
        raise GatewayError(
            RESPONSE_TOO_LARGE,
            413,
            f"The answer to {inputs} inputs could exceed this endpoint's {cap}-byte response limit; "
            f"at most {fits} such inputs fit in one request.",
            f"Split the inputs over several requests{hint}.",
        )


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
    check_answer_fits(svc.settings, req, len(texts))
    config = await gate(svc, req.model)
    features.require_route(config, "embeddings")
    await policy.check_content(
        svc, ctx.principal, ctx.ip, config_id=config.id, policy=config.content_policy, texts=texts
    )
    hold = limits.hold_for(svc, req.model, sum(len(t) for t in texts) // 4 + 4 * len(texts), 0)
    admission = await limits.admit(svc, ctx.principal, ctx.ip, model=req.model, kind="embedding", hold=hold)
    return PreparedEmbeddings(ctx, config, req.model, upstream_payload(req), admission, texts)


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
    settings = cache.settings_of(prep.config.cache)
    if settings is not None:  # per input item through the cache (flows/embeddings_cache.py)
        from . import embeddings_cache

        return await embeddings_cache.embeddings(svc, prep, req, settings)
    upstream, key = await releasing(svc, prep.admission, call(svc, prep))
    return Answer(upstream, prep.model, ctx.request_id, usage_record(prep, upstream, key), prep.admission)
