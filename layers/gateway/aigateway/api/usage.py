"""Admin routes for usage records, summaries and the audit log (docs/api.md#usage-and-audit)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter

from ..store import audit
from ..store import usage as store
from ..store.usage import money
from ..timefmt import iso_or_none
from .deps import Admin, Svc
from .params import Filter, GroupBy, Limit, Offset, OptionalUUID, Timestamp
from .responses import JSON

router = APIRouter(tags=["usage"])


def _record(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "configId": str(r["config_id"]) if r["config_id"] else None,
        "inputTokens": r["input_tokens"],
        "outputTokens": r["output_tokens"],
        "imageCount": r["image_count"],
        "imageResolution": r["image_resolution"],
        "createdAt": iso_or_none(r["created_at"]),
        "modelId": r.get("model_id"),
        "model": r.get("model"),
        "provider": r.get("provider"),
        "inputModality": r.get("input_modality"),
        "outputModality": r.get("output_modality"),
        "userId": r["user_id"],
        "costUsd": money(r["cost_usd"]),
        "keySource": r.get("key_source"),
        "kind": r.get("kind"),
        "latencyMs": r.get("latency_ms"),
    }


def _totals(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "totalInputTokens": int(r.get("total_input_tokens") or 0),
        "totalOutputTokens": int(r.get("total_output_tokens") or 0),
        "totalTokens": int(r.get("total_tokens") or 0),
        "totalImageCount": int(r.get("total_image_count") or 0),
        "totalRequests": int(r.get("total_requests") or 0),
        "totalCostUsd": money(r.get("total_cost_usd") or 0),
    }


@router.get("/api/ai/usage")
async def list_usage(
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
    return JSON({"records": [_record(r) for r in rows], "total": total})


@router.get("/api/ai/usage/summary")
async def usage_summary(
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
    if groupBy:
        body["groupBy"] = groupBy
        body["groups"] = [{"key": g["key"], **_totals(g)} for g in groups]
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
                "inputTokens": r["input_tokens"],
                "outputTokens": r["output_tokens"],
                "imageCount": r["image_count"],
                "imageResolution": r["image_resolution"],
                "createdAt": iso_or_none(r["created_at"]),
                "userId": r["user_id"],
                "costUsd": money(r["cost_usd"]),
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
