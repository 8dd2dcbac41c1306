"""ai.usage: one row per upstream call that produced an answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..db import Conn, Database


@dataclass
class UsageRecord:
    """What one call cost. `request_id` makes a replayed record (retry path) insert once."""

    request_id: str
    model_id: str
    kind: str = "chat"
    config_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    image_count: int | None = None
    image_resolution: str | None = None
    user_id: str | None = None
    cost_usd: float | None = None
    key_source: str | None = None
    latency_ms: int | None = None
    created_at: str | None = None  # ISO time of the call; set when the record is spooled

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UsageRecord:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in fields})


_INSERT = """INSERT INTO {s}.usage
    (request_id, config_id, model_id, kind, input_tokens, output_tokens, image_count, image_resolution,
     user_id, cost_usd, key_source, latency_ms, created_at)
    VALUES (%(request_id)s, %(config_id)s, %(model_id)s, %(kind)s, NULLIF(%(input_tokens)s, 0),
            NULLIF(%(output_tokens)s, 0), NULLIF(%(image_count)s, 0), %(image_resolution)s, %(user_id)s,
            %(cost_usd)s, %(key_source)s, %(latency_ms)s, COALESCE(%(created_at)s::timestamptz, now()))
    ON CONFLICT (request_id) DO NOTHING"""


async def insert(db: Database, record: UsageRecord) -> None:
    await db.execute(_INSERT, record.to_dict())


async def insert_many(db: Database, records: list[UsageRecord]) -> None:
    async def work(conn: Conn) -> None:
        async with conn.transaction():
            cur = conn.cursor()
            await cur.executemany(db.q(_INSERT), [r.to_dict() for r in records])

    await db.run(work)


_FILTER = """WHERE (%(start)s::timestamptz IS NULL OR u.created_at >= %(start)s)
               AND (%(end)s::timestamptz IS NULL OR u.created_at <= %(end)s)
               AND (%(user_id)s::text IS NULL OR u.user_id = %(user_id)s)
               AND (%(config_id)s::uuid IS NULL OR u.config_id = %(config_id)s)"""


def _params(**kw: Any) -> dict[str, Any]:
    base = {"start": None, "end": None, "user_id": None, "config_id": None}
    base.update(kw)
    return base


async def records(
    db: Database,
    *,
    start: datetime | None,
    end: datetime | None,
    user_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    p = _params(start=start, end=end, user_id=user_id, limit=limit, offset=offset)
    rows = await db.fetch(
        """SELECT u.id, u.config_id, u.input_tokens, u.output_tokens, u.image_count, u.image_resolution,
                  u.created_at, u.model_id, COALESCE(u.model_id, c.model_id) AS model, c.provider,
                  c.input_modality, c.output_modality, u.user_id, u.cost_usd, u.key_source, u.kind,
                  u.latency_ms
             FROM {s}.usage u LEFT JOIN {s}.configs c ON c.id = u.config_id """
        + _FILTER
        + " ORDER BY u.created_at DESC, u.id LIMIT %(limit)s OFFSET %(offset)s",
        p,
    )
    total = await db.fetchone("SELECT COUNT(*) AS n FROM {s}.usage u " + _FILTER, p)
    return rows, int(total["n"]) if total else 0


_GROUPS = {
    "day": "date_trunc('day', u.created_at AT TIME ZONE 'UTC')::date::text",
    "model": "COALESCE(u.model_id, '')",
    "user": "COALESCE(u.user_id, '')",
}

_TOTALS = """COALESCE(SUM(u.input_tokens), 0) AS total_input_tokens,
             COALESCE(SUM(u.output_tokens), 0) AS total_output_tokens,
             COALESCE(SUM(COALESCE(u.input_tokens, 0) + COALESCE(u.output_tokens, 0)), 0) AS total_tokens,
             COALESCE(SUM(u.image_count), 0) AS total_image_count,
             COUNT(*) AS total_requests,
             COALESCE(SUM(u.cost_usd), 0) AS total_cost_usd"""


async def summary(
    db: Database,
    *,
    start: datetime | None,
    end: datetime | None,
    config_id: str | None,
    user_id: str | None,
    group_by: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Totals over the filter, and per-group totals when `group_by` is day, model or user."""
    p = _params(start=start, end=end, config_id=config_id, user_id=user_id)
    total = await db.fetchone("SELECT " + _TOTALS + " FROM {s}.usage u " + _FILTER, p)
    groups: list[dict[str, Any]] = []
    if group_by:
        key = _GROUPS[group_by]
        groups = await db.fetch(
            f"SELECT {key} AS key, " + _TOTALS + " FROM {s}.usage u " + _FILTER + " GROUP BY 1 ORDER BY 1",
            p,
        )
    return total or {}, groups


async def by_config(
    db: Database, config_id: str, *, start: datetime | None, end: datetime | None
) -> list[dict[str, Any]]:
    return await db.fetch(
        """SELECT u.id, u.config_id, u.input_tokens, u.output_tokens, u.image_count, u.image_resolution,
                  u.created_at, u.user_id, u.cost_usd, u.model_id
             FROM {s}.usage u """
        + _FILTER
        + " ORDER BY u.created_at DESC, u.id",
        _params(start=start, end=end, config_id=config_id),
    )


def money(value: Decimal | float | None) -> float | None:
    return None if value is None else round(float(value), 10)
