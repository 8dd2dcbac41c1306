"""Admin routes for rate limits and quotas (docs/api.md#limit-routes): project settings and per-user overrides.

`null` means unlimited everywhere. PUT replaces the whole settings object (a missing key is
null); an override body replaces the user's override and only the keys it contains override
the per-user defaults. Each mutation writes its audit record in the same transaction and
drops this process's cached copy; other processes see it within `config_cache_ttl_s`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from .. import limits
from ..errors import not_found
from ..schemas import NoNul
from ..services import Services
from ..store import audit
from ..store import limits as store
from ..store.usage import money
from ..timefmt import iso_or_none
from .deps import Admin, Svc, client_ip
from .params import Limit, Offset
from .responses import JSON

router = APIRouter(tags=["limits"], default_response_class=JSON)

_MAX_RATE = 1_000_000
_MAX_TOKENS = 10**15
_MAX_USD = 1e9

Rate = Annotated[int, Field(ge=0, le=_MAX_RATE)]
Tokens = Annotated[int, Field(ge=0, le=_MAX_TOKENS)]
Usd = Annotated[float, Field(ge=0, le=_MAX_USD, allow_inf_nan=False)]
UserId = Annotated[str, Path(min_length=1, max_length=255), NoNul]


class RuleIn(BaseModel):
    """One scope's limits; null / missing = unlimited."""

    model_config = ConfigDict(extra="ignore")
    requestsPerMinute: Rate | None = None
    burst: Rate = 0
    tokensPerDay: Tokens | None = None
    tokensPerMonth: Tokens | None = None
    spendPerMonthUsd: Usd | None = None


class LimitsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    perUser: RuleIn = Field(default_factory=RuleIn)
    perProject: RuleIn = Field(default_factory=RuleIn)
    exemptAdmins: bool = True


class OverrideIn(BaseModel):
    """Keys present override the per-user defaults for one user (null = unlimited for that user)."""

    model_config = ConfigDict(extra="ignore")
    requestsPerMinute: Rate | None = None
    burst: Rate | None = None
    tokensPerDay: Tokens | None = None
    tokensPerMonth: Tokens | None = None
    spendPerMonthUsd: Usd | None = None


class RuleOut(BaseModel):
    requestsPerMinute: int | None
    burst: int
    tokensPerDay: int | None
    tokensPerMonth: int | None
    spendPerMonthUsd: float | None


class LimitsOut(BaseModel):
    perUser: RuleOut
    perProject: RuleOut
    exemptAdmins: bool
    updatedAt: str | None = None
    updatedBy: str | None = None


class UsageOut(BaseModel):
    tokensToday: int
    tokensThisMonth: int
    spendThisMonthUsd: float | None


class OverrideOut(BaseModel):
    userId: str
    overrides: dict[str, int | float | None]
    effective: RuleOut
    usage: UsageOut | None = None
    updatedAt: str | None = None
    updatedBy: str | None = None


class OverrideList(BaseModel):
    records: list[OverrideOut]
    total: int


class MessageOut(BaseModel):
    message: str


class ErrorOut(BaseModel):
    error: str
    message: str
    statusCode: int
    nextActions: str | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorOut} for s in (400, 401, 403, 404, 413, 503)}


def _override(
    user_id: str, body: dict[str, Any], defaults: limits.Rule, row: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "userId": user_id,
        "overrides": {k: body[k] for k in limits.RULE_KEYS if k in body},
        "effective": defaults.merged(body).to_json(),
        "updatedAt": iso_or_none(row["updated_at"]) if row else None,
        "updatedBy": row["updated_by"] if row else None,
    }


async def _defaults(svc: Services) -> limits.Rule:
    row = await store.get_settings(svc.db)
    return limits.LimitsConfig.from_json(row["body"] if row else None).per_user


@router.get("/api/ai/limits", response_model=LimitsOut, responses=_ERRORS)
async def get_limits(svc: Svc, _: Admin) -> JSON:
    row = await store.get_settings(svc.db)
    body = limits.LimitsConfig.from_json(row["body"] if row else None).to_json()
    return JSON(
        {
            **body,
            "updatedAt": iso_or_none(row["updated_at"]) if row else None,
            "updatedBy": row["updated_by"] if row else None,
        }
    )


@router.put("/api/ai/limits", response_model=LimitsOut, responses=_ERRORS)
async def put_limits(body: LimitsIn, request: Request, svc: Svc, who: Admin) -> JSON:
    settings = limits.LimitsConfig.from_json(body.model_dump()).to_json()
    db = svc.db
    async with db.transaction() as conn:
        await store.put_settings(conn, db, settings, who.actor)
        await audit.record(conn, db, actor=who.actor, action="UPDATE_LIMITS", details=settings, ip=client_ip(request))
    svc.limits.invalidate()
    return await get_limits(svc, who)


@router.get("/api/ai/limits/users", response_model=OverrideList, responses=_ERRORS)
async def list_user_limits(svc: Svc, _: Admin, limit: Limit = 50, offset: Offset = 0) -> JSON:
    rows, total = await store.list_overrides(
        svc.db,
        limit=limit,
        offset=offset,
    )
    defaults = await _defaults(svc)
    return JSON({"records": [_override(r["user_id"], r["body"], defaults, r) for r in rows], "total": total})


@router.get("/api/ai/limits/users/{userId}", response_model=OverrideOut, responses=_ERRORS)
async def get_user_limits(userId: UserId, svc: Svc, _: Admin) -> JSON:
    row = await store.get_override(svc.db, userId)
    if row is None:
        raise not_found(f"No limit overrides for user {userId}")
    out = _override(userId, row["body"], await _defaults(svc), row)
    used = await store.used(svc.db, limits.user_subject(userId).key)
    out["usage"] = {
        "tokensToday": int(used.get("tokens_today") or 0),
        "tokensThisMonth": int(used.get("tokens_month") or 0),
        "spendThisMonthUsd": money(used.get("spend_month") or 0),
    }
    return JSON(out)


@router.put("/api/ai/limits/users/{userId}", response_model=OverrideOut, responses=_ERRORS)
async def put_user_limits(userId: UserId, body: OverrideIn, request: Request, svc: Svc, who: Admin) -> JSON:
    override = body.model_dump(include=body.model_fields_set)
    db = svc.db
    async with db.transaction() as conn:
        await store.put_override(conn, db, userId, override, who.actor)
        await audit.record(
            conn,
            db,
            actor=who.actor,
            action="SET_USER_LIMITS",
            details={"userId": userId, "overrides": override},
            ip=client_ip(request),
        )
    svc.limits.invalidate()
    return await get_user_limits(userId, svc, who)


@router.delete("/api/ai/limits/users/{userId}", response_model=MessageOut, responses=_ERRORS)
async def delete_user_limits(userId: UserId, request: Request, svc: Svc, who: Admin) -> JSON:
    db = svc.db
    async with db.transaction() as conn:
        if not await store.delete_override(conn, db, userId):
            raise not_found(f"No limit overrides for user {userId}")
        await audit.record(
            conn,
            db,
            actor=who.actor,
            action="DELETE_USER_LIMITS",
            details={"userId": userId},
            ip=client_ip(request),
        )
    svc.limits.invalidate()
    return JSON({"message": "User limit overrides removed"})
