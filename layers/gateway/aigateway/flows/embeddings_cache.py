"""Embeddings through the cache, per input item: only the misses go upstream, merged back in order.

Each input's vector is stored once as float32 bytes (cache.py), keyed by model, dimensions and
input (and the caller's subject with scope "user"). The misses are asked for in base64, which is
the float32 bytes themselves, so a miss and a later hit serve the very same numbers, in either
encoding the caller asks for.

Usage: the answer reports what the whole request would have cost (the misses' tokens as the
upstream counted them, the hits' as stored), so a hit reads like the miss that filled it. The
usage row of a request answered wholly from the cache is a cached row (cost 0, the saving in
`saved_usd`, no quota spent); a request with some misses is billed the misses' tokens and cost,
and its `saved_usd` is what its hits would have cost.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import cache
from ..cache import CacheSettings
from ..errors import AI_UPSTREAM_UNAVAILABLE, GatewayError
from ..schemas import EmbeddingsRequest
from ..store.cache import Entry, NewEntry
from ..usage import Usage
from . import response_cache
from .common import Answer

if TYPE_CHECKING:
    from ..services import Services
    from .embeddings import PreparedEmbeddings


async def embeddings(
    svc: Services, prep: PreparedEmbeddings, req: EmbeddingsRequest, settings: CacheSettings
) -> Answer[dict[str, Any]]:
    from .embeddings import call, served_model, usage_record
    from .metering import releasing

    # The plan says whether to read and store; the keys are per input, below (not the plan's).
    plan = cache.plan_for(settings, prep.ctx.cache_control, req.cache, lambda scope: b"")
    assert plan is not None
    subject = prep.admission.subject.key
    keys = [cache.embedding_key(req.model, req.dimensions, t, settings.scope, subject) for t in prep.texts]
    found: dict[bytes, Entry] = await response_cache.get_many(svc, list(set(keys))) if plan.lookup else {}
    missing = list(dict.fromkeys(k for k in keys if k not in found))  # each distinct miss asked for once
    hits = [found[k] for k in dict.fromkeys(keys) if k in found]
    encoding = req.encoding_format or "float"

    if not missing:
        record = response_cache.hit_record(prep.ctx, prep.config.id, "embedding", prep.model, hits)
        model = hits[0].model_id
        tokens = sum(e.input_tokens for e in hits)
        result = _result(keys, {k: e.body for k, e in found.items()}, encoding, model, tokens)
        return Answer(result, prep.model, prep.ctx.request_id, record, prep.admission, cache.HIT)

    text_of = dict(zip(keys, prep.texts, strict=True))
    payload = {**prep.payload, "input": [text_of[k] for k in missing], "encoding_format": "base64"}
    upstream, key = await releasing(svc, prep.admission, call(svc, replace(prep, payload=payload)))
    vectors = _vectors(upstream, len(missing))
    usage = Usage.read(upstream.get("usage")) or Usage()
    model = served_model(upstream, prep.model)
    record = usage_record(prep, upstream, key)
    saved = [e.cost_usd for e in hits if e.cost_usd is not None]
    record.saved_usd = sum(saved) if saved else None
    if plan.store:
        await response_cache.put(svc, _entries(prep, plan.ttl_s, model, missing, text_of, vectors, usage))
    raw = {**{k: e.body for k, e in found.items()}, **dict(zip(missing, vectors, strict=True))}
    tokens = usage.prompt + sum(e.input_tokens for e in hits)
    status = cache.MISS if plan.lookup else cache.BYPASS
    return Answer(
        _result(keys, raw, encoding, model, tokens), prep.model, prep.ctx.request_id, record, prep.admission, status
    )


def _vectors(upstream: dict[str, Any], expected: int) -> list[bytes]:
    """The upstream's vectors in input order as float32 bytes; 502 when they cannot be read."""
    items = upstream.get("data")
    if not isinstance(items, list) or len(items) != expected:
        raise _unreadable()
    ordered = sorted(items, key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
    out = []
    for item in ordered:
        raw = cache.pack_vector(item.get("embedding")) if isinstance(item, dict) else None
        if raw is None:
            raise _unreadable()
        out.append(raw)
    return out


def _unreadable() -> GatewayError:
    return GatewayError(
        AI_UPSTREAM_UNAVAILABLE, 502, "The AI provider answered with embeddings the gateway cannot read."
    )


def _entries(
    prep: PreparedEmbeddings,
    ttl_s: int,
    model: str,
    missing: list[bytes],
    text_of: dict[bytes, str],
    vectors: list[bytes],
    usage: Usage,
) -> list[NewEntry]:
    """One entry per new vector; the call's tokens and cost shared out by input length."""
    lengths = [max(1, len(text_of[k])) for k in missing]
    total = sum(lengths)
    tokens = _apportion(usage.prompt, lengths)
    return [
        NewEntry(
            key=k,
            kind="embedding",
            model_id=model,
            user_id=prep.ctx.principal.user_id,
            body=v,
            input_tokens=t,
            output_tokens=0,
            cost_usd=round(usage.cost_usd * n / total, 10) if usage.cost_usd is not None else None,
            ttl_s=ttl_s,
        )
        for k, v, t, n in zip(missing, vectors, tokens, lengths, strict=True)
    ]


def _apportion(amount: int, weights: list[int]) -> list[int]:
    """`amount` split by `weights` into whole numbers that add up to it (largest remainders)."""
    total = sum(weights)
    shares = [amount * w // total for w in weights]
    rest = amount - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: -(amount * weights[i] % total))
    for i in order[:rest]:
        shares[i] += 1
    return shares


def _result(keys: list[bytes], raw: dict[bytes, bytes], encoding: str, model: str, tokens: int) -> dict[str, Any]:
    """The answer in the upstream's shape, each vector rendered from its stored float32 bytes."""
    data = [
        {"object": "embedding", "index": i, "embedding": cache.render_vector(raw[k], encoding)}
        for i, k in enumerate(keys)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
