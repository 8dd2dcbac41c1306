"""ai.limit_settings, ai.limit_overrides, ai.rate_counters, ai.quota_counters.

The hot path is `admit`: ONE statement that reads this period's token/spend totals, bumps
the per-user and per-project minute counters (only when the quotas allow the call, and the
project's only when the user's own limit allows it), decides, and writes the audit record
of a refusal — so a refused call costs no more round trips than an admitted one.

Counting is race-free across processes because `INSERT .. ON CONFLICT DO UPDATE` increments
under the row lock and RETURNING gives each request its own count: in a window of limit L
exactly the requests that drew counts 1..L are admitted, however many instances race.
"""

from __future__ import annotations

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
    used: dict[str, Decimal | int]


_ADMIT = """
WITH k AS (
    SELECT t,
           to_timestamp(floor(extract(epoch FROM t) / 60) * 60) AS win,
           (t AT TIME ZONE 'UTC')::date AS day,
           date_trunc('month', t AT TIME ZONE 'UTC')::date AS month
      FROM (SELECT COALESCE(%(at)s::timestamptz, now()) AS t) clock
),
used AS (
    SELECT COALESCE(SUM(c.tokens) FILTER (WHERE c.scope = 'user' AND c.period = 'day'), 0) AS user_day,
           COALESCE(SUM(c.tokens) FILTER (WHERE c.scope = 'user' AND c.period = 'month'), 0) AS user_month,
           COALESCE(SUM(c.spend_usd) FILTER (WHERE c.scope = 'user' AND c.period = 'month'), 0) AS user_spend,
           COALESCE(SUM(c.tokens) FILTER (WHERE c.scope = 'project' AND c.period = 'day'), 0) AS project_day,
           COALESCE(SUM(c.tokens) FILTER (WHERE c.scope = 'project' AND c.period = 'month'), 0)
               AS project_month,
           COALESCE(SUM(c.spend_usd) FILTER (WHERE c.scope = 'project' AND c.period = 'month'), 0)
               AS project_spend
      FROM k JOIN {s}.quota_counters c
        ON %(quotas)s
       AND ((c.scope = 'user' AND c.subject = %(subject)s) OR (c.scope = 'project' AND c.subject = ''))
       AND ((c.period = 'day' AND c.period_start = k.day)
            OR (c.period = 'month' AND c.period_start = k.month))
),
quota AS (
    SELECT u.*,
           CASE WHEN u.user_day >= %(u_day)s::bigint THEN 'user.tokensPerDay'
                WHEN u.user_month >= %(u_month)s::bigint THEN 'user.tokensPerMonth'
                WHEN u.user_spend >= %(u_spend)s::numeric THEN 'user.spendPerMonthUsd'
                WHEN u.project_day >= %(p_day)s::bigint THEN 'project.tokensPerDay'
                WHEN u.project_month >= %(p_month)s::bigint THEN 'project.tokensPerMonth'
                WHEN u.project_spend >= %(p_spend)s::numeric THEN 'project.spendPerMonthUsd'
           END AS refusal
      FROM used u
),
ur AS (
    INSERT INTO {s}.rate_counters AS r (scope, subject, window_start, hits)
    SELECT 'user', %(subject)s, k.win, 1 FROM k, quota q
     WHERE q.refusal IS NULL AND %(u_rate)s::integer IS NOT NULL
    ON CONFLICT (scope, subject, window_start) DO UPDATE SET hits = r.hits + 1
    RETURNING r.hits
),
pr AS (
    INSERT INTO {s}.rate_counters AS r (scope, subject, window_start, hits)
    SELECT 'project', '', k.win, 1 FROM k, quota q
     WHERE q.refusal IS NULL AND %(p_rate)s::integer IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM ur WHERE ur.hits > %(u_rate)s::integer)
    ON CONFLICT (scope, subject, window_start) DO UPDATE SET hits = r.hits + 1
    RETURNING r.hits
),
verdict AS (
    SELECT k.t AS now, k.win AS window_start, q.*,
           (SELECT hits FROM ur) AS user_hits, (SELECT hits FROM pr) AS project_hits,
           COALESCE(q.refusal,
                    CASE WHEN (SELECT hits FROM ur) > %(u_rate)s::integer THEN 'user.requestsPerMinute'
                         WHEN (SELECT hits FROM pr) > %(p_rate)s::integer THEN 'project.requestsPerMinute'
                    END) AS refused
      FROM k, quota q
),
audit AS (
    INSERT INTO {s}.audit_logs (actor, action, details, ip_address)
    SELECT %(actor)s,
           CASE WHEN q.refusal IS NULL THEN 'RATE_LIMITED' ELSE 'QUOTA_EXCEEDED' END,
           %(details)s::jsonb || jsonb_build_object('limit', v.refused),
           %(ip)s
      FROM verdict v, quota q
     WHERE v.refused IS NOT NULL AND %(audit)s
)
SELECT now, window_start, refused, user_hits, project_hits,
       user_day, user_month, user_spend, project_day, project_month, project_spend
  FROM verdict
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
    at: datetime | None = None,
    audit: bool = True,
) -> Verdict:
    """Decide one call. `user_rate` / `project_rate` are the window ceilings (limit + burst).

    `quotas` has keys u_day, u_month, u_spend, p_day, p_month, p_spend (None = unlimited).
    `at` pins the clock (tests); by default the database's clock decides the window, so
    instances with skewed clocks still agree on it.
    """
    params: dict[str, Any] = {
        "at": at,
        "subject": subject,
        "u_rate": user_rate,
        "p_rate": project_rate,
        "quotas": any(v is not None for v in quotas.values()),
        "actor": actor,
        "ip": ip,
        "details": Jsonb(details),
        "audit": audit,
    }
    for key in ("u_day", "u_month", "u_spend", "p_day", "p_month", "p_spend"):
        params[key] = quotas.get(key)
    row = await db.fetchone(_ADMIT, params)
    assert row is not None  # the statement always yields one row
    return Verdict(
        now=row["now"],
        window_start=row["window_start"],
        refused=row["refused"],
        user_hits=row["user_hits"],
        project_hits=row["project_hits"],
        used={k: row[k] for k in _USED_KEYS},
    )


_CHARGE = """
WITH k AS (
    SELECT (t AT TIME ZONE 'UTC')::date AS day, date_trunc('month', t AT TIME ZONE 'UTC')::date AS month
      FROM (SELECT COALESCE(%(at)s::timestamptz, now()) AS t) clock
)
INSERT INTO {s}.quota_counters AS c (scope, subject, period, period_start, tokens, spend_usd)
SELECT s.scope, s.subject, p.period, p.start, %(tokens)s, %(spend)s
  FROM (VALUES ('user', %(subject)s::text), ('project', '')) AS s (scope, subject),
       (SELECT 'day' AS period, day AS start FROM k UNION ALL SELECT 'month', month FROM k) AS p
 ORDER BY s.scope DESC, p.period
ON CONFLICT (scope, subject, period, period_start) DO UPDATE
   SET tokens = c.tokens + EXCLUDED.tokens, spend_usd = c.spend_usd + EXCLUDED.spend_usd
"""


async def charge(
    db: Database, *, subject: str, tokens: int, cost_usd: float | None, at: datetime | None = None
) -> None:
    """Add one answer's tokens and spend to the subject's and the project's day and month.

    Rows are locked in one fixed order (user before project, day before month), so two
    charges never deadlock on the shared project rows.
    """
    await db.execute(
        _CHARGE, {"at": at, "subject": subject, "tokens": max(0, tokens), "spend": max(0.0, cost_usd or 0.0)}
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
    """Drop counters no decision reads any more: minute windows older than 5 minutes, days older
    than 2 days, months older than 2 months. Cheap (indexed); called now and then by `charge`
    in each process, and the scheduled usage_summary job may call it too."""
    await db.execute(
        """WITH a AS (DELETE FROM {s}.rate_counters WHERE window_start < now() - interval '5 minutes')
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
