"""Admin routes for the response and embeddings cache: its size and hits, and purges (audited).

`DELETE /api/ai/cache` needs a scope: `modelId`, `userId` (the entries that user's calls
filled), both, or `all=true`; a bare DELETE is refused, so a typo never empties the cache.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from ..errors import invalid_input
from ..store import audit
from ..store import cache as store
from ..store.usage import money
from ..timefmt import iso_or_none
from .deps import Admin, Svc, client_ip
from .params import Filter
from .responses import JSON

router = APIRouter(tags=["cache"])

HIT_WINDOW_DAYS = 30


@router.get("/api/ai/cache")
async def cache_stats(svc: Svc, _: Admin) -> JSON:
    """Entries and bytes (per kind and model), the caps, and the last 30 days' hits and savings."""
    rows = await store.stats(svc.db)
    hits = await store.recent_hits(svc.db, HIT_WINDOW_DAYS)
    requests, hit_count = int(hits.get("requests") or 0), int(hits.get("hits") or 0)
    return JSON(
        {
            "entries": sum(int(r["entries"]) for r in rows),
            "bytes": sum(int(r["bytes"]) for r in rows),
            "expiredEntries": sum(int(r["expired"]) for r in rows),
            "maxEntryBytes": svc.settings.cache_max_entry_bytes,
            "maxTotalBytes": svc.settings.cache_max_total_bytes,
            "models": [_model(r) for r in rows],
            "last30Days": {
                "hits": hit_count,
                "requests": requests,
                "hitRate": round(hit_count / requests, 4) if requests else 0.0,
                "savedUsd": money(hits.get("saved_usd") or 0),
            },
        }
    )


def _model(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": r["kind"],
        "modelId": r["model_id"],
        "entries": int(r["entries"]),
        "bytes": int(r["bytes"]),
        "expiredEntries": int(r["expired"]),
        "oldestAt": iso_or_none(r["oldest"]),
    }


@router.delete("/api/ai/cache")
async def purge_cache(
    request: Request,
    svc: Svc,
    who: Admin,
    modelId: Filter = None,
    userId: Filter = None,
    purge_all: Annotated[bool, Query(alias="all")] = False,
) -> JSON:
    if not (modelId or userId or purge_all):
        raise invalid_input(
            "Validation error: say what to purge: modelId, userId, or all=true",
            "Add ?modelId=<model>, ?userId=<user>, or ?all=true to the request.",
        )
    db = svc.db
    async with db.transaction() as conn:
        deleted = await store.purge(conn, db, model_id=modelId, user_id=userId)
        details = {"modelId": modelId, "userId": userId, "all": not (modelId or userId), "deleted": deleted}
        await audit.record(conn, db, actor=who.actor, action="PURGE_CACHE", details=details, ip=client_ip(request))
    svc.hot_cache.clear()  # here at once; other processes within CONFIG_CACHE_TTL_S (cache.HotEntries)
    return JSON({"deleted": deleted, "message": "Cache purged"})
