"""Batches sent upstream as one OpenRouter batch, for its discount (off unless the deployment allows it).

When `OPENROUTER_BATCHES` is `always`, or `allowed` and the batch asks (`upstreamBatch: true`),
and every item qualifies (chat items, all for one model: an OpenRouter batch has one endpoint
and one model), the batch is submitted upstream instead of being run item by item:

1. At submission each item goes through the chat flow's checks as a live call would, as the
   submitter (`flows.chat.prepare`: gating, system prompt, request and content policy, rate limit,
   quota admission with its hold). An item refused there fails alone with its error, and a quota
   refusal stops the batch like on the gateway's own engine (the rest fail with QUOTA_EXCEEDED).
2. The admitted items' upstream payloads go to OpenRouter in one `POST /batches` (`endpoint`,
   `model`, then the inline `requests`); each admitted item is `running` with its quota hold, quota
   subject and configuration kept on its row.
3. The scheduled function (locally: a loop every `BATCH_POLL_INTERVAL_S`) polls `GET /batches/{id}`.
   Once the upstream batch is terminal, each item's result line is settled: an answer gets its
   usage row (request id `batch:<id>:<index>`, the tokens and discounted cost the upstream reports,
   charged to the kept subject, its hold dropped), exactly once however often the poll runs; an
   error line, or a line that never came, fails the item and releases its hold.

Once the upstream has the batch, its items' quota holds are kept for the upstream's completion
window and two hourly polls (`UPSTREAM_HOLD_S`), not a live call's `QUOTA_HOLD_TTL_S`: the quota
stays reserved until the results are settled, however long the upstream takes within its window.
Cancelling such a batch cancels its pending items only: what was sent upstream is settled when it
ends (the upstream is not asked to stop).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import batches, limits
from ..credentials import ResolvedKey, with_key
from ..errors import AI_UPSTREAM_UNAVAILABLE, QUOTA_EXCEEDED, GatewayError
from ..schemas import ChatRequest
from ..store import batches as store
from ..store import limits as limits_store
from ..store.usage import UsageRecord
from ..usage import Usage
from . import chat
from .batches import call_context, fail, stopped_error

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
COMPLETION_WINDOW_S = 24 * 3600  # the one window the upstream offers ("24h")
UPSTREAM_HOLD_S = COMPLETION_WINDOW_S + 2 * 3600  # and two runs of the hourly poll to collect it
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def wanted(mode: str, asked: bool | None) -> bool:
    return mode == "always" or (mode == "allowed" and bool(asked))


def qualifying_model(items: list[tuple[str, batches.ItemRequest]]) -> str | None:
    """The one model of a batch whose items can go upstream as one OpenRouter batch, else None."""
    models = {chat.model_name(it.request) for _, it in items if isinstance(it.request, ChatRequest)}
    all_chat = all(it.kind == "chat" for _, it in items)
    return next(iter(models)) if all_chat and len(models) == 1 else None


async def submit(
    svc: Services,
    owner: store.Owner,
    items: list[tuple[str, batches.ItemRequest]],
    model: str,
    **create: Any,
) -> str:
    """Store the batch (`create`: the store's dialect, endpoint, file and metadata), admit its items
    and send the admitted ones upstream; returns the batch id."""
    batch_id = batches.new_id()
    new = [store.NewItem(cid, it.kind, it.stored(), it.request.model) for cid, it in items]
    await store.create(svc.db, batch_id, owner, new, upstream="openrouter", **create)
    admitted: list[tuple[str, chat.PreparedChat]] = []
    stopped = False
    for idx, (cid, it) in enumerate(items):
        assert isinstance(it.request, ChatRequest)
        try:
            if stopped:
                raise stopped_error()
            prep = await chat.prepare(svc, call_context(owner, batch_id, idx), it.request, it.extra or None)
        except GatewayError as err:
            if err.code == QUOTA_EXCEEDED and not stopped:
                stopped = True
                await store.stop(svc.db, batch_id, QUOTA_EXCEEDED)
            await fail(svc, batch_id, cid, err)
            continue
        subject = prep.admission.subject.key
        await store.hold(
            svc.db, batch_id, cid, hold_id=prep.admission.hold_id, subject=subject, config_id=prep.config.id
        )
        admitted.append((cid, prep))
    if admitted:
        await _send(svc, batch_id, owner, model, admitted)
    await store.finish(svc.db, batch_id)
    return batch_id


async def _send(
    svc: Services, batch_id: str, owner: store.Owner, model: str, admitted: list[tuple[str, chat.PreparedChat]]
) -> None:
    # Key order matters upstream: endpoint and model before the requests.
    body = {
        "endpoint": ENDPOINT,
        "model": model,
        "completion_window": f"{COMPLETION_WINDOW_S // 3600}h",
        "requests": [{"custom_id": cid, "body": prep.payload} for cid, prep in admitted],
    }
    headers = dict(owner.upstream_headers)
    try:
        created, key = await with_key(
            svc.keys,
            svc.settings,
            # Sent once: a retry after a 5xx the upstream had already acted on would submit (and bill) twice.
            lambda k: svc.upstream.post_json("/batches", k.key, body, extra_headers=headers, retry=False),
        )
    except GatewayError as err:
        for cid, prep in admitted:
            await limits.release(svc, prep.admission)
            await fail(svc, batch_id, cid, err)
        return
    await store.set_upstream(svc.db, batch_id, str(created.get("id")), key.source)
    holds = [prep.admission.hold_id for _, prep in admitted if prep.admission.hold_id is not None]
    try:
        await limits_store.extend(svc.db, holds, UPSTREAM_HOLD_S)
    except Exception:  # the upstream has the batch: failing the submit now would invite a second one
        log.exception("keeping the quota holds of upstream batch %s failed; they expire as a live call's", batch_id)


async def _get(svc: Services, path: str, key: ResolvedKey) -> dict[str, Any]:
    return await svc.upstream.get_json(path, key.key)


def _line_error(line: dict[str, Any] | None, why: str) -> GatewayError:
    detail = (line or {}).get("error") or {}
    message = detail.get("message") if isinstance(detail, dict) else None
    return GatewayError(AI_UPSTREAM_UNAVAILABLE, 502, f"The upstream batch did not answer this item: {message or why}")


async def poll(svc: Services) -> int:
    """Settle every upstream batch that ended; returns how many items were settled."""
    settled = 0
    for row in await store.upstream_open(svc.db):
        path = f"/batches/{row['upstream_batch_id']}"
        try:
            view, _ = await with_key(svc.keys, svc.settings, partial(_get, svc, path))
        except GatewayError:
            log.warning("polling upstream batch of %s failed; the next poll retries", row["id"])
            continue
        if view.get("status") not in TERMINAL:
            continue
        settled += await _settle(svc, row, view)
        await store.finish(svc.db, row["id"])
    return settled


async def _settle(svc: Services, row: dict[str, Any], view: dict[str, Any]) -> int:
    batch_id = row["id"]
    lines = {r.get("custom_id"): r for r in view.get("results") or [] if isinstance(r, dict)}
    why = ((view.get("error") or {}).get("message")) or f"the upstream batch ended {view.get('status')}"
    n = 0
    for item in await store.held(svc.db, batch_id):
        line = lines.get(item.custom_id)
        response = (line or {}).get("response") or {}
        answer = response.get("body") if response.get("status_code") == 200 else None
        if isinstance(answer, dict):
            await svc.usage.record(_record(row, item, answer))
            await store.record(
                svc.db, batch_id, item.custom_id, status="done", status_code=200, model=None, result=answer
            )
        else:
            if item.hold_id is not None:
                await limits_store.release(svc.db, [item.hold_id])
            await fail(svc, batch_id, item.custom_id, _line_error(line, why))
        n += 1
    return n


def _record(row: dict[str, Any], item: store.Held, answer: dict[str, Any]) -> UsageRecord:
    """The usage row of one answered item, charged to its kept subject, dropping its hold."""
    usage = Usage.read(answer.get("usage")) or Usage()
    served = answer.get("model")
    return UsageRecord(
        request_id=batches.request_id(row["id"], item.idx),
        model_id=served if isinstance(served, str) and served else item.model,
        kind="chat",
        config_id=item.config_id,
        input_tokens=usage.prompt,
        output_tokens=usage.completion,
        user_id=row["owner_user_id"],
        cost_usd=usage.cost_usd,
        key_source=row["upstream_key_source"],
        batch_id=row["id"],
        charge_subject=item.charge_subject,
        hold_id=item.hold_id,
    )
