"""ai.usage: one row per upstream call that produced an answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from ..db import Database


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
    cached: bool = False  # answered from the gateway's cache: cost 0, spends no quota
    saved_usd: float | None = None  # what a cached answer would have cost upstream
    batch_id: str | None = None  # the batch this call was an item of
    # Not columns: the caller's quota subject and the admission's quota hold (flows/metering.settle).
    # A record with a subject is charged when its row lands, live or replayed from the spool, once.
    charge_subject: str | None = None
    hold_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UsageRecord:
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in fields})


_INSERT = """INSERT INTO {s}.usage
    (request_id, config_id, model_id, kind, input_tokens, output_tokens, image_count, image_resolution,
     user_id, cost_usd, key_source, latency_ms, created_at, quota_charged, cached, saved_usd, batch_id)
    VALUES (%(request_id)s, %(config_id)s, %(model_id)s, %(kind)s, NULLIF(%(input_tokens)s, 0),
            NULLIF(%(output_tokens)s, 0), NULLIF(%(image_count)s, 0), %(image_resolution)s, %(user_id)s,
            %(cost_usd)s, %(key_source)s, %(latency_ms)s, COALESCE(%(created_at)s::timestamptz, now()),
            %(charged)s, %(cached)s, %(saved_usd)s, %(batch_id)s)
    ON CONFLICT (request_id) DO NOTHING"""


async def insert(db: Database, record: UsageRecord, *, charged: bool = False) -> None:
    """One row and nothing else (`charged`: its quota charge is being made apart)."""
    await db.execute(_INSERT, {**record.to_dict(), "charged": charged})


# Settling calls: their usage rows, their quota charges and the release of their holds in one
# statement, all or nothing (the `settle_calls` function of migrations 011, 012 and 015 says how a
# row is charged exactly once). The calls go as one JSON document: adapting one list parameter per
# column cost the driver more than the statement's planning did.
_SETTLE = "SELECT {s}.settle_calls(%s::jsonb)"


def _settle_document(records: list[UsageRecord]) -> str:
    """The records as a JSON array of objects keyed by their fields (orjson writes dataclasses as such)."""
    return orjson.dumps(records, default=_exact).decode()


def _exact(value: object) -> str:
    """A Decimal goes as its exact digits (a JSON string, which the database reads as numeric)."""
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot settle a {type(value).__name__}")


async def settle(db: Database, records: list[UsageRecord]) -> None:
    """Insert the calls' usage rows, charge each to its `charge_subject` (None: not counted against
    quotas) and the project, and delete their holds: one statement, all or nothing. Used by the
    answer path (group commit) and by the spool replay alike."""
    unique = list({r.request_id: r for r in records}.values())  # one statement may touch a row once
    if unique:
        await db.execute(_SETTLE, [_settle_document(unique)])


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
                  u.latency_ms, u.cached, u.saved_usd
             FROM {s}.usage u LEFT JOIN {s}.configs c ON c.id = u.config_id """
        + _FILTER
        + " ORDER BY u.created_at DESC, u.id LIMIT %(limit)s OFFSET %(offset)s",
        p,
    )
    total = await db.fetchone("SELECT COUNT(*) AS n FROM {s}.usage u " + _FILTER, p)
    return rows, int(total["n"]) if total else 0


# GET /usage/summary reads whole UTC days from the daily rollups and everything else from raw rows.
# For every day D <= rolled_through, usage_daily holds exactly the rows of D stamped inserted_at <=
# watermark (migrations/004_usage_daily.sql), so the answer is
#   rollups of the whole days in [start, end] up to rolled_through     (lo <= day < hi)
# + raw rows in [start, end] before and after those days               (created_at < a, >= b: the
#                                                                      partial edges, today, lag)
# + raw rows of those days inserted after the watermark                (late rows, by inserted_at)
# which equals the aggregation over raw rows whatever the rollup's lag. The state is read first so
# the planner sees real bounds (the late-row branch then uses the inserted_at index); the main
# statement checks in its own snapshot that the state is still the same, and the caller retries
# if a rollup committed in between.
_STATE = "SELECT watermark, rolled_through FROM {s}.usage_rollup_state WHERE id = 'usage_daily'"
# One raw row as the summary reads it (the columns of usage_daily, in its order).
_RAW_COLUMNS = """(u.created_at AT TIME ZONE 'UTC')::date AS day, u.model_id, u.user_id, 1 AS requests,
           u.input_tokens, u.output_tokens, COALESCE(u.input_tokens, 0) + COALESCE(u.output_tokens, 0) AS total_tokens,
           u.image_count, u.cost_usd, CASE WHEN u.cached THEN 1 ELSE 0 END AS cached_requests, u.saved_usd"""
_RAW = "SELECT " + _RAW_COLUMNS + " FROM {s}.usage u "
_SRC = (
    """WITH ok AS (
    SELECT %(wm)s::timestamptz IS NULL OR EXISTS (
        SELECT 1 FROM {s}.usage_rollup_state
         WHERE id = 'usage_daily' AND watermark = %(wm)s AND rolled_through = %(through)s) AS ok
), src AS (
    SELECT d.day, d.model_id, d.user_id, d.requests, d.input_tokens, d.output_tokens, d.total_tokens,
           d.image_count, d.cost_usd, d.cached_requests, d.saved_usd
      FROM {s}.usage_daily d
     WHERE d.day >= %(lo)s AND d.day < %(hi)s
       AND (%(user_id)s::text IS NULL OR d.user_id = %(user_id)s)
       AND (%(config_id)s::uuid IS NULL OR d.config_id = %(config_id)s)
    UNION ALL """
    + _RAW
    + _FILTER
    + " AND u.created_at < %(a)s UNION ALL "
    + _RAW
    + _FILTER
    + " AND u.created_at >= %(b)s UNION ALL "
    + _RAW
    + _FILTER
    + " AND u.inserted_at > %(wm)s AND u.created_at >= %(a)s AND u.created_at < %(b)s)"
)

_GROUPS = {
    "day": "s.day::text",
    "model": "COALESCE(s.model_id, '')",
    "user": "COALESCE(s.user_id, '')",
    "batch": "COALESCE(s.batch_id, '')",
}

# groupBy=batch reads raw rows only: the daily rollups have no batch column, and a batch's rows
# are found by the partial index on batch_id. Same columns as `_SRC`'s, plus batch_id.
_BATCH_SRC = (
    "WITH ok AS (SELECT true AS ok), src AS (SELECT " + _RAW_COLUMNS + ", u.batch_id FROM {s}.usage u " + _FILTER + ")"
)

_TOTALS = """COALESCE(SUM(s.input_tokens), 0) AS total_input_tokens,
             COALESCE(SUM(s.output_tokens), 0) AS total_output_tokens,
             COALESCE(SUM(s.total_tokens), 0) AS total_tokens,
             COALESCE(SUM(s.image_count), 0) AS total_image_count,
             COALESCE(SUM(s.requests), 0) AS total_requests,
             COALESCE(SUM(s.cost_usd), 0) AS total_cost_usd,
             COALESCE(SUM(s.cached_requests), 0) AS total_cached_requests,
             COALESCE(SUM(s.saved_usd), 0) AS total_saved_usd,
             (SELECT ok FROM ok) AS consistent"""

_NEVER = datetime.min.replace(tzinfo=UTC)
_DAY, _MICRO = timedelta(days=1), timedelta(microseconds=1)


def _span(start: datetime | None, end: datetime | None, state: dict[str, Any] | None) -> dict[str, Any]:
    """Bounds for `_SRC`: the whole UTC days [lo, hi) inside [start, end] that the rollups cover,
    as instants [a, b); none (raw rows only) without a rollup state or without such days."""
    none = {"wm": None, "through": None, "lo": date.min, "hi": date.min, "a": _NEVER, "b": _NEVER}
    if not state:
        return none
    through: date = state["rolled_through"]
    hi = through + _DAY
    try:
        lo = (start.astimezone(UTC) - _MICRO).date() + _DAY if start else date.min
        if end:
            hi = min(hi, (end.astimezone(UTC) + _MICRO).date())
    except OverflowError:  # a bound at the ends of the calendar: read raw rows
        return none
    if lo >= hi:
        return none

    def midnight(d: date) -> datetime:
        return _NEVER if d == date.min else datetime(d.year, d.month, d.day, tzinfo=UTC)

    return {"wm": state["watermark"], "through": through, "lo": lo, "hi": hi, "a": midnight(lo), "b": midnight(hi)}


async def summary(
    db: Database,
    *,
    start: datetime | None,
    end: datetime | None,
    config_id: str | None,
    user_id: str | None,
    group_by: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Totals over the filter, and per-group totals when `group_by` is day, model, user or batch.

    Equal to aggregating the raw rows (start and end inclusive, days in UTC), read from the daily
    rollups where they cover whole days. Totals and groups come from one statement (the empty
    grouping set is the total), so they always agree.
    """
    key = _GROUPS[group_by] if group_by else None
    if key:
        query = (
            (_BATCH_SRC if group_by == "batch" else _SRC)
            + f" SELECT {key} AS key, GROUPING({key}) AS is_total, "
            + _TOTALS
            + f" FROM src s GROUP BY GROUPING SETS (({key}), ()) ORDER BY GROUPING({key}), 1"
        )
    else:
        query = _SRC + " SELECT 1 AS is_total, " + _TOTALS + " FROM src s"
    p = _params(start=start, end=end, config_id=config_id, user_id=user_id)
    rows: list[dict[str, Any]] = []
    for attempt in range(3):
        # A rollup committing between the two statements makes the state differ: read it again,
        # and the third time read raw rows only, which needs no state.
        state = await db.fetchone(_STATE) if attempt < 2 else None
        rows = await db.fetch(query, {**p, **_span(start, end, state)})
        if rows[0]["consistent"]:
            break
    total = next((r for r in rows if r["is_total"]), {})
    groups = [r for r in rows if not r["is_total"]]
    for r in rows:
        del r["is_total"], r["consistent"]
    return total, groups


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
