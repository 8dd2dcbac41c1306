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


# GET /usage/summary reads whole UTC days from the daily rollups and everything else from raw rows,
# in one statement so the rollups, the rollup state and the raw rows come from one snapshot. For
# every day D <= rolled_through, usage_daily holds exactly the rows of D stamped inserted_at <=
# watermark (migrations/004_usage_daily.sql), so the answer is:
#   rollups of the whole days in [start, end] up to rolled_through    (span: lo <= day < hi)
# + raw rows in [start, end] before and after that span               (the partial edges, today)
# + raw rows inside the span inserted after the watermark             (late rows; index on inserted_at)
# which equals the aggregation over raw rows whatever the rollup's lag.
_SPAN = """WITH st AS (
    SELECT watermark, rolled_through FROM {s}.usage_rollup_state WHERE id = 'usage_daily'
), span AS (
    SELECT st.watermark AS wm,
           COALESCE(((%(start)s::timestamptz AT TIME ZONE 'UTC') - interval '1 microsecond')::date + 1,
                    '-infinity'::date) AS lo,
           LEAST(((%(end)s::timestamptz AT TIME ZONE 'UTC') + interval '1 microsecond')::date,
                 st.rolled_through + 1) AS hi
      FROM st
), cut AS (
    SELECT wm, lo, hi, lo::timestamp AT TIME ZONE 'UTC' AS a, hi::timestamp AT TIME ZONE 'UTC' AS b
      FROM span WHERE lo < hi
    UNION ALL
    SELECT NULL, NULL, NULL, '-infinity'::timestamptz, '-infinity'::timestamptz
     WHERE NOT EXISTS (SELECT 1 FROM span WHERE lo < hi)
), src AS (
    SELECT d.day, d.model_id, d.user_id, d.requests, d.input_tokens, d.output_tokens, d.total_tokens,
           d.image_count, d.cost_usd
      FROM cut JOIN {s}.usage_daily d ON d.day >= cut.lo AND d.day < cut.hi
     WHERE (%(user_id)s::text IS NULL OR d.user_id = %(user_id)s)
       AND (%(config_id)s::uuid IS NULL OR d.config_id = %(config_id)s)
    UNION ALL
    SELECT """
_RAW = """(u.created_at AT TIME ZONE 'UTC')::date, u.model_id, u.user_id, 1, u.input_tokens, u.output_tokens,
           COALESCE(u.input_tokens, 0) + COALESCE(u.output_tokens, 0), u.image_count, u.cost_usd"""
_SRC = (
    _SPAN
    + _RAW
    + " FROM cut JOIN {s}.usage u ON u.created_at < cut.a "
    + _FILTER
    + " UNION ALL SELECT "
    + _RAW
    + " FROM cut JOIN {s}.usage u ON u.created_at >= cut.b "
    + _FILTER
    + " UNION ALL SELECT "
    + _RAW
    + " FROM cut JOIN {s}.usage u ON u.inserted_at > cut.wm + interval '1 day' AND u.created_at >= cut.a AND u.created_at < cut.b "
    + _FILTER
    + ")"
)

_GROUPS = {
    "day": "s.day::text",
    "model": "COALESCE(s.model_id, '')",
    "user": "COALESCE(s.user_id, '')",
}

_TOTALS = """COALESCE(SUM(s.input_tokens), 0) AS total_input_tokens,
             COALESCE(SUM(s.output_tokens), 0) AS total_output_tokens,
             COALESCE(SUM(s.total_tokens), 0) AS total_tokens,
             COALESCE(SUM(s.image_count), 0) AS total_image_count,
             COALESCE(SUM(s.requests), 0) AS total_requests,
             COALESCE(SUM(s.cost_usd), 0) AS total_cost_usd"""


async def summary(
    db: Database,
    *,
    start: datetime | None,
    end: datetime | None,
    config_id: str | None,
    user_id: str | None,
    group_by: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Totals over the filter, and per-group totals when `group_by` is day, model or user.

    Equal to aggregating the raw rows (start and end inclusive, days in UTC), read from the daily
    rollups where they cover whole days. Totals and groups come from one statement (the empty
    grouping set is the total), so they always agree.
    """
    p = _params(start=start, end=end, config_id=config_id, user_id=user_id)
    if not group_by:
        total = await db.fetchone(_SRC + " SELECT " + _TOTALS + " FROM src s", p)
        return total or {}, []
    key = _GROUPS[group_by]
    rows = await db.fetch(
        _SRC
        + f" SELECT {key} AS key, GROUPING({key}) AS is_total, "
        + _TOTALS
        + f" FROM src s GROUP BY GROUPING SETS (({key}), ()) ORDER BY GROUPING({key}), 1",
        p,
    )
    total = next((r for r in rows if r["is_total"]), {})
    return total, [r for r in rows if not r["is_total"]]


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
