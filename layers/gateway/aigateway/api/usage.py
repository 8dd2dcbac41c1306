"""Admin routes for usage records, summaries and the audit log (docs/api.md#usage-and-audit).

Records and totals are supersets of what the InsForge SDKs read: the gateway's own names
(`inputTokens`, `costUsd`, ...) plus the Python SDK's (`promptTokens`, `completionTokens`,
`totalTokens`, `cost`, `totalCost`, `byModel`). The one conflict, `GET /api/ai/usage` as
`{records, total}` or as a bare list (the Python SDK), is decided by the caller's `Client`.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request

from ..store import audit
from ..store import usage as store
from ..store.usage import money
from ..timefmt import iso_or_none
from .clients import Client, client_of
from .deps import Admin, Svc
from .params import Filter, GroupBy, Limit, Offset, OptionalUUID, Timestamp
from .responses import JSON

router = APIRouter(tags=["usage"])


def _tokens(r: dict[str, Any]) -> dict[str, Any]:
    """A row's tokens under both names: the gateway's (input/output) and the Python SDK's (prompt/completion)."""
    inp, out = r["input_tokens"], r["output_tokens"]
    return {
        "inputTokens": inp,
        "outputTokens": out,
        "promptTokens": inp,
        "completionTokens": out,
        "totalTokens": (inp or 0) + (out or 0),
    }


def _record(r: dict[str, Any]) -> dict[str, Any]:
    cost = money(r["cost_usd"])
    return {
        "id": str(r["id"]),
        "configId": str(r["config_id"]) if r["config_id"] else None,
        **_tokens(r),
        "imageCount": r["image_count"],
        "imageResolution": r["image_resolution"],
        "createdAt": iso_or_none(r["created_at"]),
        "modelId": r.get("model_id") or r.get("model"),
        "model": r.get("model"),
        "provider": r.get("provider"),
        "inputModality": r.get("input_modality"),
        "outputModality": r.get("output_modality"),
        "userId": r["user_id"],
        "costUsd": cost,
        "cost": cost,
        "keySource": r.get("key_source"),
        "kind": r.get("kind"),
        "latencyMs": r.get("latency_ms"),
        "cached": bool(r.get("cached")),  # answered from the response / embeddings cache
        "savedUsd": money(r.get("saved_usd")),
    }


def _totals(r: dict[str, Any]) -> dict[str, Any]:
    requests = int(r.get("total_requests") or 0)
    hits = int(r.get("total_cached_requests") or 0)
    return {
        "totalInputTokens": int(r.get("total_input_tokens") or 0),
        "totalOutputTokens": int(r.get("total_output_tokens") or 0),
        "totalTokens": int(r.get("total_tokens") or 0),
        "totalImageCount": int(r.get("total_image_count") or 0),
        "totalRequests": requests,
        "totalCostUsd": money(r.get("total_cost_usd") or 0),
        # The response and embeddings cache: calls answered from it, their share, what they saved.
        "cacheHits": hits,
        "cacheHitRate": round(hits / requests, 4) if requests else 0.0,
        "savedUsd": money(r.get("total_saved_usd") or 0),
    }


def _by_model(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`byModel` as the Python SDK reads it: model id → {requests, tokens, cost}."""
    out = {}
    for g in groups:
        t = _totals(g)
        out[str(g["key"] or "unknown")] = {
            "requests": t["totalRequests"],
            "tokens": t["totalTokens"],
            "cost": t["totalCostUsd"],
        }
    return out


@router.get("/api/ai/usage")
async def list_usage(
    request: Request,
    svc: Svc,
    _: Admin,
    startDate: Timestamp = None,
    endDate: Timestamp = None,
    limit: Limit = 50,
    offset: Offset = 0,
    userId: Filter = None,
) -> JSON:
    rows, total = await store.records(
        svc.db,
        start=startDate,
        end=endDate,
        user_id=userId,
        limit=limit,
        offset=offset,
    )
    records = [_record(r) for r in rows]
    if client_of(request) is Client.PYTHON:
        return JSON(records)  # the page only; the Python SDK has no use for `total`
    return JSON({"records": records, "total": total})


@router.get("/api/ai/usage/summary")
async def usage_summary(
    request: Request,
    svc: Svc,
    _: Admin,
    configId: OptionalUUID = None,
    startDate: Timestamp = None,
    endDate: Timestamp = None,
    userId: Filter = None,
    groupBy: GroupBy = None,
) -> JSON:
    total, groups = await store.summary(
        svc.db,
        start=startDate,
        end=endDate,
        config_id=str(configId) if configId else None,
        user_id=userId,
        group_by=groupBy,
    )
    body = _totals(total)
    body["totalCost"] = body["totalCostUsd"]
    if groupBy:
        body["groupBy"] = groupBy
        body["groups"] = [{"key": g["key"], **_totals(g)} for g in groups]
    if groupBy == "model":
        body["byModel"] = _by_model(groups)
    elif client_of(request) is Client.PYTHON:  # it always reads `byModel`: one more grouped read
        by_model = await store.summary(
            svc.db,
            start=startDate,
            end=endDate,
            config_id=str(configId) if configId else None,
            user_id=userId,
            group_by="model",
        )
        body["byModel"] = _by_model(by_model[1])
    return JSON(body)


@router.get("/api/ai/usage/config/{configId}")
async def usage_by_config(
    configId: UUID, svc: Svc, _: Admin, startDate: Timestamp = None, endDate: Timestamp = None
) -> JSON:
    rows = await store.by_config(svc.db, str(configId), start=startDate, end=endDate)
    return JSON(
        [
            {
                "id": str(r["id"]),
                "configId": str(r["config_id"]),
                **_tokens(r),
                "imageCount": r["image_count"],
                "imageResolution": r["image_resolution"],
                "createdAt": iso_or_none(r["created_at"]),
                "userId": r["user_id"],
                "costUsd": money(r["cost_usd"]),
                "cost": money(r["cost_usd"]),
                "modelId": r["model_id"],
            }
            for r in rows
        ]
    )


@router.get("/api/ai/audit")
async def list_audit(
    svc: Svc,
    _: Admin,
    action: Filter = None,
    actor: Filter = None,
    startDate: Timestamp = None,
    endDate: Timestamp = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JSON:
    rows, total = await audit.search(
        svc.db,
        action=action,
        actor=actor,
        start=startDate,
        end=endDate,
        limit=limit,
        offset=offset,
    )
    return JSON(
        {
            "records": [
                {
                    "id": str(r["id"]),
                    "actor": r["actor"],
                    "action": r["action"],
                    "module": r["module"],
                    "details": r["details"],
                    "ipAddress": r["ip_address"],
                    "createdAt": iso_or_none(r["created_at"]),
                }
                for r in rows
            ],
            "total": total,
        }
    )
