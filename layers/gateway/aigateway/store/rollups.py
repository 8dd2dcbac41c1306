"""ai.usage_daily and ai.usage_rollup_state: the daily usage rollup (migration 004 explains the design).

Every statement here runs inside the one transaction of a rollup run (`aigateway.rollup.roll_up`),
in the order below, after `LOCK`. The summary query that reads the rollups lives beside the raw
one in `store/usage.py`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ..db import Conn

# Transaction-scoped: two runs at once (a retry overlapping a slow run, the CLI beside the
# schedule) wait for each other; the second then finds (almost) nothing new.
LOCK_ID = 7_130_006
LOCK = "SELECT pg_advisory_xact_lock(%s)"

STATE = """SELECT watermark, rolled_through FROM {s}.usage_rollup_state WHERE id = 'usage_daily'"""

# The moment of this run, read before the open transactions below.
CLOCK = "SELECT clock_timestamp() AS now"

# The oldest open transaction in this database other than ours. A usage row is stamped
# inserted_at = clock_timestamp() inside its transaction, so inserted_at >= that transaction's
# start: every row stamped before min(open transaction start) and before CLOCK was committed
# before this statement ran, and the statements after it see it. Sessions of other roles show
# no xact_start unless we may read their stats; the gateway writes usage with one role.
OLDEST_OPEN = """SELECT min(xact_start) AS oldest FROM pg_stat_activity
    WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND datname = current_database()"""

# Days to recompute: those that gained rows since the last watermark (late rows included: a
# replayed record keeps its old created_at) and those that became whole since the last run.
AFFECTED_DAYS = """SELECT day FROM (
        SELECT DISTINCT (u.created_at AT TIME ZONE 'UTC')::date AS day FROM {s}.usage u
         WHERE u.inserted_at > %(old_watermark)s AND u.inserted_at <= %(watermark)s
           AND u.created_at < %(new_end)s
        UNION
        SELECT DISTINCT (u.created_at AT TIME ZONE 'UTC')::date FROM {s}.usage u
         WHERE u.created_at >= %(old_end)s AND u.created_at < %(new_end)s
           AND u.inserted_at <= %(watermark)s
    ) d ORDER BY day"""

_SUMS = """count(*) AS rows, COALESCE(sum(requests), 0) AS requests,
    COALESCE(sum(input_tokens), 0) AS input_tokens, COALESCE(sum(output_tokens), 0) AS output_tokens,
    COALESCE(sum(total_tokens), 0) AS total_tokens, COALESCE(sum(image_count), 0) AS image_count,
    COALESCE(sum(cost_usd), 0) AS cost_usd"""

# What the affected days held before (to report what this run added).
DELETE_DAYS = (
    """WITH gone AS (DELETE FROM {s}.usage_daily WHERE day = ANY(%(days)s) RETURNING *) SELECT """
    + _SUMS
    + " FROM gone"
)

# Recompute the affected days from raw rows. The DELETE above leaves nothing to conflict with;
# the upsert keeps the statement correct (and idempotent) on its own all the same.
INSERT_DAYS = (
    """WITH ins AS (
    INSERT INTO {s}.usage_daily
        (day, model_id, config_id, user_id, requests, input_tokens, output_tokens, total_tokens,
         image_count, cost_usd, cached_requests, saved_usd)
    SELECT (u.created_at AT TIME ZONE 'UTC')::date, u.model_id, u.config_id, u.user_id, count(*),
           COALESCE(sum(u.input_tokens), 0), COALESCE(sum(u.output_tokens), 0),
           COALESCE(sum(COALESCE(u.input_tokens, 0) + COALESCE(u.output_tokens, 0)), 0),
           COALESCE(sum(u.image_count), 0), COALESCE(sum(u.cost_usd), 0),
           count(*) FILTER (WHERE u.cached), COALESCE(sum(u.saved_usd), 0)
      FROM {s}.usage u
     WHERE u.created_at >= %(lo)s AND u.created_at < %(hi)s
       AND (u.created_at AT TIME ZONE 'UTC')::date = ANY(%(days)s)
       AND u.inserted_at <= %(watermark)s
     GROUP BY 1, 2, 3, 4
    ON CONFLICT (day, model_key, config_key, user_key) DO UPDATE SET
        requests = EXCLUDED.requests, input_tokens = EXCLUDED.input_tokens,
        output_tokens = EXCLUDED.output_tokens, total_tokens = EXCLUDED.total_tokens,
        image_count = EXCLUDED.image_count, cost_usd = EXCLUDED.cost_usd,
        cached_requests = EXCLUDED.cached_requests, saved_usd = EXCLUDED.saved_usd, rolled_up_at = now()
    RETURNING *
) SELECT """
    + _SUMS
    + " FROM ins"
)

SAVE_STATE = """INSERT INTO {s}.usage_rollup_state (id, watermark, rolled_through, updated_at)
    VALUES ('usage_daily', %(watermark)s, %(rolled_through)s, now())
    ON CONFLICT (id) DO UPDATE SET watermark = EXCLUDED.watermark,
        rolled_through = EXCLUDED.rolled_through, updated_at = EXCLUDED.updated_at"""


async def one(conn: Conn, q: str, params: Any = None) -> dict[str, Any]:
    cur = await conn.execute(q, params)
    row = await cur.fetchone()
    return row or {}


async def affected_days(
    conn: Conn, q: str, *, old_watermark: datetime, watermark: datetime, old_end: datetime, new_end: datetime
) -> list[date]:
    cur = await conn.execute(
        q, {"old_watermark": old_watermark, "watermark": watermark, "old_end": old_end, "new_end": new_end}
    )
    return [r["day"] for r in await cur.fetchall()]
