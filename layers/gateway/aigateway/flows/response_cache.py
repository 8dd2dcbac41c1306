"""The cache's steps in the chat and embeddings flows: plan, look up, bill a hit, store a miss.

A hit has passed every check a miss passes (auth, gating, policy, rate limits and quota
admission all ran in `prepare`); it is settled like any call, with a usage row marked cached: the
tokens the stored answer had, cost 0 and the saving, spending no quota and dropping its hold.

The cache never fails a call: a lookup the database cannot answer is a miss, a store that fails
is logged and skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson

from .. import cache
from ..cache import CachePlan, StreamRecorder
from ..sse import DONE, Event
from ..store import cache as store
from ..store.cache import Entry, NewEntry
from ..store.usage import UsageRecord

if TYPE_CHECKING:
    from ..services import Services
    from .chat import PreparedChat
    from .common import CallContext

log = logging.getLogger(__name__)


def chat_plan(prep: PreparedChat, body_flag: bool | None) -> CachePlan | None:
    """The call's cache plan; None when the model's configuration has no cache."""
    subject = prep.admission.subject.key
    return cache.plan_for(
        cache.settings_of(prep.config.cache),
        prep.ctx.cache_control,
        body_flag,
        lambda scope: cache.chat_key(prep.payload, prep.ctx.upstream_headers, scope, subject),
    )


def status(plan: CachePlan | None) -> str | None:
    return plan.status if plan is not None else None


async def lookup(svc: Services, plan: CachePlan | None) -> Entry | None:
    """The live entry for the plan's key, if the plan may read one."""
    if plan is None or not plan.lookup:
        return None
    found = await get_many(svc, [plan.key])
    return found.get(plan.key)


async def get_many(svc: Services, keys: list[bytes]) -> dict[bytes, Entry]:
    """The live entries among `keys`: this process's hot copies, the rest read from the database."""
    hot = svc.hot_cache
    found = {k: e for k in keys if (e := hot.get(k)) is not None}
    rest = [k for k in keys if k not in found]
    if not rest:
        return found
    try:
        read = await store.get(svc.db, rest)
    except Exception as exc:  # the cache never fails a call: a lookup that fails is a miss
        log.warning("cache lookup failed (%s); answering from the upstream", type(exc).__name__)
        return found
    for k, e in read.items():
        hot.put(k, e)
    return {**found, **read}


def hit_record(ctx: CallContext, config_id: str, kind: str, model: str, entries: list[Entry]) -> UsageRecord:
    """The usage row of a call answered from the cache: what it would have cost, as a saving."""
    costs = [e.cost_usd for e in entries if e.cost_usd is not None]
    return UsageRecord(
        request_id=ctx.request_id,
        model_id=entries[0].model_id if entries else model,
        kind=kind,
        config_id=config_id,
        input_tokens=sum(e.input_tokens for e in entries),
        output_tokens=sum(e.output_tokens for e in entries),
        user_id=ctx.principal.user_id,
        cost_usd=0.0,
        key_source="cache",
        latency_ms=int((time.perf_counter() - ctx.started) * 1000),
        cached=True,
        saved_usd=sum(costs) if costs else None,
    )


def chat_hit_record(prep: PreparedChat, entry: Entry) -> UsageRecord:
    return hit_record(prep.ctx, prep.config.id, "chat", prep.model, [entry])


async def store_answer(
    svc: Services, plan: CachePlan | None, prep: PreparedChat, upstream: dict[str, Any] | None, record: UsageRecord
) -> None:
    """Store a finished chat answer, when the plan allows it and the answer may be stored."""
    if plan is None or not plan.store or upstream is None or not cache.storable(upstream):
        return
    body = cache.encode_answer(upstream)
    if len(body) > svc.settings.cache_max_entry_bytes:
        return
    entry = NewEntry(
        key=plan.key,
        kind="chat",
        model_id=record.model_id,
        user_id=prep.ctx.principal.user_id,
        body=body,
        input_tokens=record.input_tokens or 0,
        output_tokens=record.output_tokens or 0,
        cost_usd=record.cost_usd,
        ttl_s=plan.ttl_s,
    )
    await put(svc, [entry])


async def put(svc: Services, entries: list[NewEntry]) -> None:
    """Store entries, then keep the deployment's total under its cap now and then."""
    try:
        await store.put(svc.db, entries)
        for e in entries:
            svc.hot_cache.put(e.key, Entry(e.body, e.model_id, e.input_tokens, e.output_tokens, e.cost_usd, e.ttl_s))
        await _evict_now_and_then(svc)
    except Exception as exc:  # the answer is paid for and on its way: never fail it for the cache
        log.warning("storing a cache entry failed (%s); the answer is served uncached", type(exc).__name__)


async def _evict_now_and_then(svc: Services) -> None:
    """Every `cache_evict_interval_s` per process: expired entries out, then the oldest past the cap."""
    now = time.monotonic()
    last = svc.cache_evicted_at
    if last is not None and now - last < svc.settings.cache_evict_interval_s:
        return
    svc.cache_evicted_at = now
    await store.evict(svc.db, svc.settings.cache_max_total_bytes)


class ReplayStream:
    """A stored answer standing in for an open upstream stream: the same events a live one sends."""

    generation_id: str | None = None

    def __init__(self, entry: Entry) -> None:
        self._chunks = cache.replay_chunks(cache.decode_answer(entry.body))

    async def events(self) -> AsyncIterator[Event]:
        for chunk in self._chunks:
            yield Event(data=orjson.dumps(chunk).decode())
        yield Event(data=DONE)

    def close(self) -> None:
        """Nothing to close: no connection is open."""

    async def release(self) -> None:
        """Nothing to release: no connection is open."""


async def recording(
    chunks: AsyncIterator[dict[str, Any] | None], recorder: StreamRecorder
) -> AsyncIterator[dict[str, Any] | None]:
    """`chunks` passed on unchanged, each also kept by `recorder` (the answer a miss stores)."""
    async for chunk in chunks:
        if chunk is not None:
            recorder.add(chunk)
        yield chunk
