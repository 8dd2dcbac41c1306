"""Native batches (docs/api.md#batches): submit chat and embeddings items at once, read their answers.

`POST /api/ai/batches` answers 202 with the batch; its items run in the background as the
submitter (flows/batches.py). A caller sees only its own batches; admins see all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import batches
from ..auth import Principal
from ..errors import invalid_input
from ..flows import batches as flow
from ..schemas import ChatRequest, EmbeddingsRequest
from ..store import batches as store
from . import batch_shapes as shapes
from . import validation
from .deps import Svc, client_ip, forwarded_headers, user
from .params import Limit
from .responses import JSON

router = APIRouter(prefix="/api/ai/batches", tags=["batches"])


async def _owner_dep(request: Request) -> Principal:
    """A caller who may own batches: checked before the body, so an anonymous caller gets its 403."""
    return batches.check_may_own(user(request))


Owner = Annotated[Principal, Depends(_owner_dep)]


class BatchItemIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    customId: str
    type: Literal["chat", "embeddings"]
    body: dict[str, Any]


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[BatchItemIn]
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    # Ask for OpenRouter's Batch API (honoured where the deployment allows it and the items qualify).
    upstreamBatch: bool | None = None


@router.post("", status_code=202)
async def create_batch(body: BatchIn, request: Request, svc: Svc, who: Owner) -> JSON:
    owner = batches.owner_of(who, client_ip(request), forwarded_headers(request))
    batches.check_items([i.customId for i in body.items], svc.settings.batch_max_items)
    items = [(it.customId, _parse_item(it.type, it.body, f"items.{n}.body")) for n, it in enumerate(body.items)]
    batch_id = await flow.submit(svc, owner, items, metadata=body.metadata, upstream_batch=body.upstreamBatch)
    return JSON(shapes.native_batch(await flow.get(svc, who, batch_id)), status_code=202)


def _parse_item(kind: batches.Kind, body: dict[str, Any], where: str) -> batches.ItemRequest:
    """One item's body as its request; 400 INVALID_INPUT naming the field under `where` otherwise."""
    try:
        if kind == "chat":
            req: ChatRequest | EmbeddingsRequest = ChatRequest.model_validate(body)
        else:
            req = EmbeddingsRequest.model_validate(body)
    except ValidationError as exc:
        raise invalid_input(validation.render(list(exc.errors()), under=where)[0]) from None
    batches.check_not_streamed(req, where)
    return batches.ItemRequest(kind, req, {})


@router.get("")
async def list_batches(svc: Svc, who: Owner, limit: Limit = 20, after: Annotated[str | None, Query()] = None) -> JSON:
    rows = await store.listing(svc.db, limit=limit, after=after, **batches.may_see(who))
    return JSON(
        {
            "batches": [shapes.native_batch(r) for r in rows],
            "nextCursor": rows[-1]["id"] if len(rows) == limit else None,
        }
    )


@router.get("/{batch_id}")
async def get_batch(batch_id: str, svc: Svc, who: Owner) -> JSON:
    return JSON(shapes.native_batch(await flow.get(svc, who, batch_id)))


@router.get("/{batch_id}/results")
async def batch_results(
    batch_id: str, svc: Svc, who: Owner, limit: Limit = 100, after: Annotated[int, Query(ge=0)] = 0
) -> JSON:
    """Items in submission order, `limit` a page (fewer where the response cap is reached);
    `nextCursor` is the `after` of the next page."""
    await flow.get(svc, who, batch_id)
    rows = await store.results(svc.db, batch_id, after=after, limit=limit, finished_only=False)
    return JSON(shapes.results_page(batch_id, rows, limit, svc.settings.max_response_bytes))


@router.post("/{batch_id}/cancel")
async def cancel_batch(batch_id: str, svc: Svc, who: Owner) -> JSON:
    return JSON(shapes.native_batch(await flow.cancel(svc, who, batch_id)))
