"""The batch flows: submit a batch, run one of its items, cancel it.

An item runs through the same flow as a live call (`flows.chat.answer`,
`flows.embeddings.embeddings`) under the submitter's stored identity, so gating, the admin's
system prompt, content policy, rate limits and quota reservation are the live ones, and its
usage row carries the batch id. Running an item, top to bottom:

1. claim it (pending, or running from a delivery whose worker died; anything else: nothing to do);
2. if the batch stopped admitting items (its quota ran out), fail it with that error, no call;
3. run the call; settle its usage row (keyed by the item's request id: a second run of the
   same item never counts twice) and then record the answer on the item. While the call runs the
   item is touched every quarter of `BATCH_STALE_AFTER_S`, so the stale-item sweep
   (flows/batch_sweep.py) never sends again an item whose worker is alive, however long its
   upstream call takes — a second run would be billed once but paid upstream twice;
4. a refusal that passes (rate limit, database or upstream briefly away) puts the item back to
   wait and asks for a retry; any other error is the item's answer, in the contract's body;
   a quota refusal also stops the batch, so its remaining items fail with `QUOTA_EXCEEDED`;
5. finish the batch if this was its last open item.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from .. import batches
from ..errors import (
    AI_UPSTREAM_UNAVAILABLE,
    INTERNAL_ERROR,
    QUOTA_EXCEEDED,
    RATE_LIMITED,
    SERVICE_UNAVAILABLE,
    GatewayError,
    not_found,
    service_unavailable,
)
from ..schemas import ChatRequest
from ..store import batches as store
from . import chat
from .common import CallContext
from .embeddings import embeddings
from .metering import settle

if TYPE_CHECKING:
    from ..auth import Principal
    from ..services import Services
    from .common import Answer

log = logging.getLogger(__name__)

RETRYABLE = frozenset({RATE_LIMITED, SERVICE_UNAVAILABLE, AI_UPSTREAM_UNAVAILABLE})
RETRY_AFTER_S = 5.0


async def submit(
    svc: Services,
    owner: store.Owner,
    items: list[tuple[str, batches.ItemRequest]],
    *,
    dialect: str = "native",
    endpoint: str | None = None,
    input_file_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    upstream_batch: bool | None = None,
) -> str:
    """Store the batch whole, then queue its items (or, where the deployment allows it and the items
    qualify, send them upstream as one OpenRouter batch); returns the batch id."""
    batches.check_items([cid for cid, _ in items], svc.settings.batch_max_items)
    from . import openrouter_batches as upstream  # here: it imports this module's item helpers

    model = (
        upstream.qualifying_model(items) if upstream.wanted(svc.settings.openrouter_batches, upstream_batch) else None
    )
    if model is not None:
        kw = {"dialect": dialect, "endpoint": endpoint, "input_file_id": input_file_id, "metadata": metadata}
        return await upstream.submit(svc, owner, items, model, **kw)
    batch_id = batches.new_id()
    new = [store.NewItem(cid, it.kind, it.stored(), it.request.model) for cid, it in items]
    await store.create(
        svc.db, batch_id, owner, new, dialect=dialect, endpoint=endpoint, input_file_id=input_file_id, metadata=metadata
    )
    try:
        await svc.batch_queue.send([(batch_id, cid) for cid, _ in items])
    except Exception as exc:
        # Not queued, never to run: the batch is removed and the caller told to retry (messages
        # already sent name a batch that no longer exists, which a worker skips). The error's type
        # only: an SQS message can carry the queue URL and account.
        log.warning("queueing batch %s failed (%s); it was not submitted", batch_id, type(exc).__name__)
        await store.delete(svc.db, batch_id)
        raise service_unavailable(
            "The batch queue is unavailable; nothing was submitted. Please retry shortly."
        ) from None
    return batch_id


def call_context(owner: store.Owner, batch_id: str, idx: int) -> CallContext:
    """The context of one item's call, as if the submitter had made it live (never from the item)."""
    principal = batches.principal_of(owner)
    rid = batches.request_id(batch_id, idx)
    return CallContext(principal, owner.ip, rid, time.perf_counter(), dict(owner.upstream_headers))


async def _call(svc: Services, item: store.Claimed) -> Answer[dict[str, Any]]:
    req = batches.parse_stored(item.kind, item.body)
    ctx = call_context(item.owner, item.batch_id, item.idx)
    if isinstance(req.request, ChatRequest):
        answer = await chat.answer(svc, ctx, req.request, req.extra or None)
    else:
        answer = await embeddings(svc, ctx, req.request)
    answer.usage.batch_id = item.batch_id
    await settle(svc, answer.admission, answer.usage)
    return answer


def stopped_error() -> GatewayError:
    return GatewayError(
        QUOTA_EXCEEDED,
        402,
        "Quota exceeded: this batch stopped admitting items when its quota ran out.",
        "Submit the remaining items again once the quota resets, or ask the administrator to raise it.",
    )


async def run_item(svc: Services, batch_id: str, custom_id: str) -> float | None:
    """Run one item (see the module docstring); seconds until it should run again, or None."""
    item = await store.claim(svc.db, batch_id, custom_id)
    if item is None:
        await store.finish(svc.db, batch_id)  # a redelivery of a finished item: maybe the batch is done
        return None
    try:
        if item.stopped_by:
            raise stopped_error()
        async with _kept_alive(svc, item):
            answer = await _call(svc, item)
    except GatewayError as err:
        if err.code in RETRYABLE and item.attempts < svc.settings.batch_max_attempts:
            await store.requeue(svc.db, batch_id, custom_id)
            return _retry_after(err)
        if err.code == QUOTA_EXCEEDED:
            await store.stop(svc.db, batch_id, QUOTA_EXCEEDED)
        await fail(svc, batch_id, custom_id, err)
    except Exception:
        log.exception("batch item %s of %s failed unexpectedly", custom_id, batch_id)
        rid = batches.request_id(batch_id, item.idx)
        await fail(
            svc,
            batch_id,
            custom_id,
            GatewayError(INTERNAL_ERROR, 500, f"An unexpected error occurred. Request id: {rid}"),
        )
    else:
        await store.record(
            svc.db, batch_id, custom_id, status="done", status_code=200, model=answer.model, result=answer.result
        )
    await store.finish(svc.db, batch_id)
    return None


@asynccontextmanager
async def _kept_alive(svc: Services, item: store.Claimed) -> AsyncIterator[None]:
    """Touch the running item while the block runs (step 3 of the module docstring)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(svc.settings.batch_stale_after_s / 4)
            try:
                await store.touch(svc.db, item.batch_id, item.custom_id)
            except Exception:  # a missed beat is no failure of the call: the next one tries again
                log.warning("could not mark batch item %s of %s as still running", item.custom_id, item.batch_id)

    beating = asyncio.ensure_future(beat())
    try:
        yield
    finally:
        beating.cancel()  # not awaited: waiting here could swallow a cancellation of the item's own task


async def fail(svc: Services, batch_id: str, custom_id: str, err: GatewayError) -> None:
    """The item's answer is `err`, in the contract's error body."""
    await store.record(
        svc.db, batch_id, custom_id, status="failed", status_code=err.status, model=None, error=err.body()
    )


def _retry_after(err: GatewayError) -> float:
    try:
        return max(1.0, float(err.headers.get("Retry-After", RETRY_AFTER_S)))
    except ValueError:
        return RETRY_AFTER_S


async def cancel(svc: Services, principal: Principal, batch_id: str) -> dict[str, Any]:
    """Cancel a batch the caller may see; pending items stop at once. Returns the batch."""
    found = await store.get(svc.db, batch_id, **batches.may_see(principal))
    if found is None:
        raise not_found_batch(batch_id)
    await store.cancel(svc.db, batch_id)
    after = await store.get(svc.db, batch_id, **batches.may_see(principal))
    assert after is not None
    return after


async def get(svc: Services, principal: Principal, batch_id: str) -> dict[str, Any]:
    found = await store.get(svc.db, batch_id, **batches.may_see(principal))
    if found is None:
        raise not_found_batch(batch_id)
    return found


def not_found_batch(batch_id: str) -> GatewayError:
    return not_found(f"Batch {batch_id} not found")
