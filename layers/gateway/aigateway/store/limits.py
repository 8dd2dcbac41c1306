"""ai.limit_settings, ai.limit_overrides, ai.rate_counters, ai.quota_counters, ai.quota_holds.

The hot path is `admit`: ONE statement (the `admit_call` function of migration 005) that sums
this period's settled tokens/spend plus the holds of the calls still in flight, bumps the
per-user and per-project minute counters (only when the quotas allow the call, and the
project's only when the user's own limit allows it), decides, holds the admitted call's worst
case, and writes the audit record of a refusal — so a refused call costs no more round trips
than an admitted one.

Counting is race-free across processes: minute counters because `INSERT .. ON CONFLICT DO
UPDATE` increments under the row lock and RETURNING gives each request its own count (in a
window of limit L exactly the requests that drew counts 1..L are admitted); quotas because the
check and the hold are taken under one advisory lock per user and one for the project.

Settling a call charges its counters in the same statement as its usage row (store/usage.py,
`settle`). `charge_user` and `charge_project` are separate statements for the rare settle the
database refuses (usage_spool.settle_apart): one that fails does not lose the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb

from ..db import Conn, Database

PROJECT = ""  # the subject of project-scope counters


@dataclass(frozen=True)
class Verdict:
    """What the admit statement decided, with the numbers the headers and messages need."""

    now: datetime
    window_start: datetime
    refused: str | None  # e.g. "user.requestsPerMinute", "project.tokensPerDay"; None = admitted
    user_hits: int | None
    project_hits: int | None
    used: dict[str, Decimal | int]  # settled + held, per quota
    hold_id: int | None = None  # the admitted call's quota hold (None: no quota applies)
    held: bool = False  # refused by a quota only because calls in progress hold the rest
    durable: bool = False  # its commit waited for the WAL flush (a refusal with an audit record)


# The admission writes only disposable state — minute counters and holds that expire — unless
# it refuses with an audit record, so its commit does not wait for the WAL flush
# (`synchronous_commit` off for this transaction alone, set after the decision): a PostgreSQL
# crash can forget the last fraction of a second of counts and holds (wal_writer_delay, 200 ms by
# default), never a usage row, a charge or an audit record, whose commits stay synchronous.
_ADMIT = """
SELECT a.*, set_config('synchronous_commit', CASE WHEN a.o_refused IS NOT NULL AND %(audit)s::boolean THEN 'on'
                                                   ELSE 'off' END, true) AS commit_mode
  FROM {s}.admit_call(
    %(at)s::timestamptz, %(subject)s::text, %(u_rate)s::integer, %(p_rate)s::integer,
    %(u_day)s::bigint, %(u_month)s::bigint, %(u_spend)s::numeric,
    %(p_day)s::bigint, %(p_month)s::bigint, %(p_spend)s::numeric,
    %(hold_tokens)s::bigint, %(hold_spend)s::numeric, %(hold_ttl_s)s::integer,
    %(actor)s::text, %(ip)s::text, %(details)s::jsonb, %(audit)s::boolean) a
"""

_USED_KEYS = ("user_day", "user_month", "user_spend", "project_day", "project_month", "project_spend")


async def admit(
    db: Database,
    *,
    subject: str,
    user_rate: int | None,
    project_rate: int | None,
    quotas: dict[str, int | float | None],
    actor: str,
    ip: str | None,
    details: dict[str, Any],
    hold_tokens: int = 0,
    hold_spend: float = 0.0,
    hold_ttl_s: int = 900,
    at: datetime | None = None,
    audit: bool = True,
) -> Verdict:
    """Decide one call. `user_rate` / `project_rate` are the window ceilings (limit + burst).

    `quotas` has keys u_day, u_month, u_spend, p_day, p_month, p_spend (None = unlimited). When
    any is set, an admitted call holds `hold_tokens` / `hold_spend` (its worst case) until it is
    settled or released, or for `hold_ttl_s` at most. `at` pins the clock (tests); by default the
    database's clock decides the window, so instances with skewed clocks still agree on it.
    """
    params: dict[str, Any] = {
        "at": at,
        "subject": subject,
        "u_rate": user_rate,
        "p_rate": project_rate,
        "hold_tokens": max(0, hold_tokens),
        "hold_spend": max(0.0, hold_spend),
        "hold_ttl_s": hold_ttl_s,
        "actor": actor,
        "ip": ip,
        "details": Jsonb(details),
        "audit": audit,
    }
    for key in ("u_day", "u_month", "u_spend", "p_day", "p_month", "p_spend"):
        params[key] = quotas.get(key)
    row = await db.fetchone(_ADMIT, params)
    assert row is not None  # the function always returns one row
    return Verdict(
        now=row["o_now"],
        window_start=row["o_window_start"],
        refused=row["o_refused"],
        user_hits=row["o_user_hits"],
        project_hits=row["o_project_hits"],
        used={k: row["o_" + k] for k in _USED_KEYS},
        hold_id=row["o_hold_id"],
        held=bool(row["o_held"]),
        durable=row["commit_mode"] == "on",
    )


_PERIODS = """
WITH k AS (
    SELECT (t AT TIME ZONE 'UTC')::date AS day, date_trunc('month', t AT TIME ZONE 'UTC')::date AS month
      FROM (SELECT COALESCE(%(at)s::timestamptz, now()) AS t) clock
), p AS (SELECT 'day' AS period, day AS start FROM k UNION ALL SELECT 'month', month FROM k)
"""

_CHARGE_USER = (
    _PERIODS
    + """
INSERT INTO {s}.quota_counters AS c (scope, subject, period, period_start, tokens, spend_usd)
SELECT 'user', %(subject)s, p.period, p.start, %(tokens)s, %(spend)s FROM p ORDER BY p.period
ON CONFLICT (scope, subject, period, period_start) DO UPDATE
   SET tokens = c.tokens + EXCLUDED.tokens, spend_usd = c.spend_usd + EXCLUDED.spend_usd
"""
)

_CHARGE_PROJECT = (
    _PERIODS
    + """, released AS (DELETE FROM {s}.quota_holds WHERE id = ANY(%(holds)s::bigint[]))
INSERT INTO {s}.quota_counters AS c (scope, subject, period, period_start, tokens, spend_usd)
SELECT 'project', '', p.period, p.start, %(tokens)s, %(spend)s FROM p
 WHERE %(tokens)s::bigint > 0 OR %(spend)s::numeric > 0
 ORDER BY p.period
ON CONFLICT (scope, subject, period, period_start) DO UPDATE
   SET tokens = c.tokens + EXCLUDED.tokens, spend_usd = c.spend_usd + EXCLUDED.spend_usd
"""
)


async def charge_user(
    db: Database, *, subject: str, tokens: int, cost_usd: float | None, at: datetime | None = None
) -> None:
    """Add settled tokens and spend to one subject's day and month (day row locked first)."""
    spend = max(0.0, cost_usd or 0.0)
    await db.execute(_CHARGE_USER, {"at": at, "subject": subject, "tokens": max(0, tokens), "spend": spend})


async def charge_project(
    db: Database, *, tokens: int, cost_usd: float | None, holds: Sequence[int] = (), at: datetime | None = None
) -> None:
    """Add settled tokens and spend to the project's day and month, and delete the settled calls'
    holds in the same statement, so no moment counts a call both as held and settled, or neither.

    Called after the users' charges: while it waits, a settled call counts twice (conservative)."""
    params = {"at": at, "tokens": max(0, tokens), "spend": max(0.0, cost_usd or 0.0), "holds": list(holds)}
    await db.execute(_CHARGE_PROJECT, params)


async def charge(
    db: Database, *, subject: str, tokens: int, cost_usd: float | None, at: datetime | None = None
) -> None:
    """One answer charged to its subject and to the project: two statements, each attempted."""
    try:
        await charge_user(db, subject=subject, tokens=tokens, cost_usd=cost_usd, at=at)
    finally:
        await charge_project(db, tokens=tokens, cost_usd=cost_usd, at=at)


async def release(db: Database, holds: Sequence[int]) -> None:
    """Drop the holds of calls that ended without an answer to bill. Holds are disposable (they
    expire), so, like the admission, this commit does not wait for the WAL flush."""
    if holds:
        await db.execute(
            """WITH dropped AS (DELETE FROM {s}.quota_holds WHERE id = ANY(%s::bigint[]))
               SELECT set_config('synchronous_commit', 'off', true)""",
            (list(holds),),
        )


async def extend(db: Database, holds: Sequence[int], seconds: int) -> None:
    """Keep the holds for at least `seconds` from now: calls whose answers take longer to come back
    than a live call's (an upstream batch) stay reserved until they are settled. Committed durably:
    these holds guard a quota for hours, not for the length of one call."""
    if holds:
        await db.execute(
            """UPDATE {s}.quota_holds SET expires_at = GREATEST(expires_at, now() + make_interval(secs => %s))
                WHERE id = ANY(%s::bigint[])""",
            (seconds, list(holds)),
        )


async def used(db: Database, subject: str) -> dict[str, Any]:
    """The subject's tokens today and this month and spend this month (admin view)."""
    row = await db.fetchone(
        """SELECT COALESCE(SUM(tokens) FILTER (WHERE period = 'day'
                                                AND period_start = (now() AT TIME ZONE 'UTC')::date), 0)
                      AS tokens_today,
                  COALESCE(SUM(tokens) FILTER (WHERE period = 'month'), 0) AS tokens_month,
                  COALESCE(SUM(spend_usd) FILTER (WHERE period = 'month'), 0) AS spend_month
             FROM {s}.quota_counters
            WHERE scope = 'user' AND subject = %s
              AND period_start >= date_trunc('month', now() AT TIME ZONE 'UTC')::date""",
        (subject,),
    )
    return row or {}


async def cleanup(db: Database) -> None:
    """Drop counters no decision reads any more: minute windows older than 5 minutes, expired
    holds, days older than 2 days, months older than 2 months. Cheap (indexed); called now and
    then by `charge` in each process, and the scheduled usage_summary job may call it too."""
    await db.execute(
        """WITH a AS (DELETE FROM {s}.rate_counters WHERE window_start < now() - interval '5 minutes'),
                h AS (DELETE FROM {s}.quota_holds WHERE expires_at < now())
           DELETE FROM {s}.quota_counters
            WHERE (period = 'day' AND period_start < (now() AT TIME ZONE 'UTC')::date - 2)
               OR (period = 'month'
                   AND period_start
                       < (date_trunc('month', now() AT TIME ZONE 'UTC') - interval '2 months')::date)"""
    )


# ---- settings -------------------------------------------------------------------------------


async def load(db: Database) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The project settings (None when never set) and every per-user override, in one query."""
    rows = await db.fetch(
        """SELECT 'project' AS kind, id AS key, body FROM {s}.limit_settings
           UNION ALL
           SELECT 'user', user_id, body FROM {s}.limit_overrides"""
    )
    project = next((r["body"] for r in rows if r["kind"] == "project"), None)
    users = {r["key"]: r["body"] for r in rows if r["kind"] == "user"}
    return project, users


async def get_settings(db: Database) -> dict[str, Any] | None:
    return await db.fetchone("SELECT body, updated_by, updated_at FROM {s}.limit_settings WHERE id = 'project'")


async def put_settings(conn: Conn, db: Database, body: dict[str, Any], actor: str) -> None:
    await conn.execute(
        db.q(
            """INSERT INTO {s}.limit_settings (id, body, updated_by) VALUES ('project', %s, %s)
               ON CONFLICT (id) DO UPDATE
                  SET body = EXCLUDED.body, updated_by = EXCLUDED.updated_by, updated_at = now()"""
        ),
        (Jsonb(body), actor),
    )


async def get_override(db: Database, user_id: str) -> dict[str, Any] | None:
    return await db.fetchone(
        "SELECT user_id, body, updated_by, updated_at FROM {s}.limit_overrides WHERE user_id = %s", (user_id,)
    )


async def list_overrides(db: Database, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    rows = await db.fetch(
        """SELECT user_id, body, updated_by, updated_at, COUNT(*) OVER () AS total
             FROM {s}.limit_overrides ORDER BY user_id LIMIT %s OFFSET %s""",
        (limit, offset),
    )
    total = int(rows[0]["total"]) if rows else 0
    if not rows and offset:
        row = await db.fetchone("SELECT COUNT(*) AS n FROM {s}.limit_overrides")
        total = int(row["n"]) if row else 0
    return rows, total


async def put_override(conn: Conn, db: Database, user_id: str, body: dict[str, Any], actor: str) -> None:
    await conn.execute(
        db.q(
            """INSERT INTO {s}.limit_overrides (user_id, body, updated_by) VALUES (%s, %s, %s)
               ON CONFLICT (user_id) DO UPDATE
                  SET body = EXCLUDED.body, updated_by = EXCLUDED.updated_by, updated_at = now()"""
        ),
        (user_id, Jsonb(body), actor),
    )


async def delete_override(conn: Conn, db: Database, user_id: str) -> bool:
    cur = await conn.execute(db.q("DELETE FROM {s}.limit_overrides WHERE user_id = %s"), (user_id,))
    return cur.rowcount > 0
