"""Admin routes for usage records, summaries and the audit log (spec §9, CONTRACT §6)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..errors import invalid_input
from ..store import audit
from ..store import usage as store
from ..store.usage import money
from .deps import Admin, Svc
from .params import parse_int, parse_time, parse_uuid
from .responses import JSON

router = APIRouter(tags=["usage"])


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _record(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "configId": str(r["config_id"]) if r["config_id"] else None,
        "inputTokens": r["input_tokens"],
        "outputTokens": r["output_tokens"],
        "imageCount": r["image_count"],
        "imageResolution": r["image_resolution"],
        "createdAt": _iso(r["created_at"]),
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
    startDate: str | None = None,
    endDate: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
    userId: str | None = None,
) -> JSON:
    rows, total = await store.records(
        svc.db,
        start=parse_time("startDate", startDate),
        end=parse_time("endDate", endDate),
        user_id=userId or None,
        limit=parse_int("limit", limit, 50, 1, 1000),
        offset=parse_int("offset", offset, 0, 0, 10_000_000),
    )
    return JSON({"records": [_record(r) for r in rows], "total": total})


@router.get("/api/ai/usage/summary")
async def usage_summary(
    svc: Svc,
    _: Admin,
    configId: str | None = None,
    startDate: str | None = None,
    endDate: str | None = None,
    userId: str | None = None,
    groupBy: str | None = None,
) -> JSON:
    if groupBy not in (None, "", "day", "model", "user"):
        raise invalid_input("Validation error: groupBy: Expected 'day' | 'model' | 'user'")
    total, groups = await store.summary(
        svc.db,
        start=parse_time("startDate", startDate),
        end=parse_time("endDate", endDate),
        config_id=parse_uuid("configId", configId),
        user_id=userId or None,
        group_by=groupBy or None,
    )
    body = _totals(total)
    if groupBy:
        body["groupBy"] = groupBy
        body["groups"] = [{"key": g["key"], **_totals(g)} for g in groups]
    return JSON(body)


@router.get("/api/ai/usage/config/{config_id}")
async def usage_by_config(
    config_id: str, svc: Svc, _: Admin, startDate: str | None = None, endDate: str | None = None
) -> JSON:
    cid = parse_uuid("configId", config_id)
    assert cid is not None
    rows = await store.by_config(
        svc.db, cid, start=parse_time("startDate", startDate), end=parse_time("endDate", endDate)
    )
    return JSON(
        [
            {
                "id": str(r["id"]),
                "configId": str(r["config_id"]),
                "inputTokens": r["input_tokens"],
                "outputTokens": r["output_tokens"],
                "imageCount": r["image_count"],
                "imageResolution": r["image_resolution"],
                "createdAt": _iso(r["created_at"]),
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
    action: str | None = None,
    actor: str | None = None,
    startDate: str | None = None,
    endDate: str | None = None,
    limit: str | None = None,
    offset: str | None = None,
) -> JSON:
    rows, total = await audit.search(
        svc.db,
        action=action or None,
        actor=actor or None,
        start=parse_time("startDate", startDate),
        end=parse_time("endDate", endDate),
        limit=parse_int("limit", limit, 50, 1, 1000),
        offset=parse_int("offset", offset, 0, 0, 10_000_000),
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
                    "createdAt": _iso(r["created_at"]),
                }
                for r in rows
            ],
            "total": total,
        }
    )
