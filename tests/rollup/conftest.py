"""Helpers for the rollup tests: usage rows with explicit times, a rollup run, the raw aggregation.

Everything goes through the session's embedded PostgreSQL; a rollup run uses its own `Database`
on a fresh event loop, as the Lambda handler and the CLI do.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aigateway.db import Database
from aigateway.local import EmbeddedPostgres
from aigateway.rollup import roll_up

SQL = Callable[..., list[dict[str, Any]]]
ROLLUP_TABLES = ("usage", "usage_daily", "usage_rollup_state")

# The plain aggregation over raw rows the rollups must reproduce, per (day, model, config, user).
RAW_DAILY = """SELECT (created_at AT TIME ZONE 'UTC')::date AS day, model_id, config_id, user_id,
        count(*) AS requests, COALESCE(sum(input_tokens), 0) AS input_tokens,
        COALESCE(sum(output_tokens), 0) AS output_tokens,
        COALESCE(sum(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0)), 0) AS total_tokens,
        COALESCE(sum(image_count), 0) AS image_count, COALESCE(sum(cost_usd), 0) AS cost_usd,
        count(*) FILTER (WHERE cached) AS cached_requests, COALESCE(sum(saved_usd), 0) AS saved_usd
   FROM ai.usage WHERE {where} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""

ROLLED = """SELECT day, model_id, config_id, user_id, requests, input_tokens, output_tokens, total_tokens,
        image_count, cost_usd, cached_requests, saved_usd FROM ai.usage_daily ORDER BY 1, 2, 3, 4"""


def norm(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as comparable tuples (ints and Decimals compared by value, NULL-safe sort)."""
    out = [
        (
            r["day"],
            r["model_id"],
            str(r["config_id"]) if r["config_id"] else None,
            r["user_id"],
            int(r["requests"]),
            int(r["input_tokens"]),
            int(r["output_tokens"]),
            int(r["total_tokens"]),
            int(r["image_count"]),
            r["cost_usd"].normalize() if r["cost_usd"] is not None else None,
            int(r["cached_requests"]),
            r["saved_usd"].normalize(),
        )
        for r in rows
    ]
    return sorted(out, key=lambda t: tuple((x is None, str(x)) for x in t))


def insert_usage(sql: SQL, rows: list[dict[str, Any]]) -> None:
    """Insert usage rows in one statement; each needs created_at (datetime), the rest is optional."""
    if not rows:
        return
    docs = []
    for r in rows:
        d = {
            "request_id": r.get("request_id") or "req-" + uuid.uuid4().hex,
            "config_id": r.get("config_id"),
            "model_id": r.get("model_id", "openai/gpt-4o-mini"),
            "kind": r.get("kind", "chat"),
            "input_tokens": r.get("input_tokens"),
            "output_tokens": r.get("output_tokens"),
            "image_count": r.get("image_count"),
            "user_id": r.get("user_id"),
            "cost_usd": str(r["cost_usd"]) if r.get("cost_usd") is not None else None,
            "created_at": r["created_at"].isoformat(),
            "cached": bool(r.get("cached")),
            "saved_usd": str(r["saved_usd"]) if r.get("saved_usd") is not None else None,
        }
        docs.append(d)
    sql(
        """INSERT INTO ai.usage (request_id, config_id, model_id, kind, input_tokens, output_tokens,
                                 image_count, user_id, cost_usd, created_at, cached, saved_usd)
           SELECT request_id, config_id, model_id, kind, input_tokens, output_tokens, image_count, user_id,
                  cost_usd, created_at, cached, saved_usd
             FROM jsonb_to_recordset(%s::jsonb) AS x(request_id text, config_id uuid, model_id text, kind text,
                  input_tokens int, output_tokens int, image_count int, user_id text, cost_usd numeric,
                  created_at timestamptz, cached boolean, saved_usd numeric)""",
        (json.dumps(docs),),
    )


def today(sql: SQL) -> date:
    """Today in UTC by the database's clock (the rollup's notion of 'today')."""
    d: date = sql("SELECT (now() AT TIME ZONE 'UTC')::date AS d")[0]["d"]
    return d


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=UTC)


def run_rollup(uri: str) -> dict[str, Any]:
    """One rollup run on its own connection and event loop."""

    async def once() -> dict[str, Any]:
        db = Database(lambda: uri, schema="ai")
        try:
            return await roll_up(db)
        finally:
            await db.close()

    return asyncio.run(once())


def roll_up_all(sql: SQL, uri: str) -> dict[str, Any]:
    """Run until the watermark passed every inserted row (a transaction open elsewhere in the
    server, e.g. autovacuum, can hold it back for a moment); returns the first run's result."""
    first = run_rollup(uri)
    for _ in range(50):
        row = sql(
            """SELECT (SELECT watermark FROM ai.usage_rollup_state) >= COALESCE(
                   (SELECT max(inserted_at) FROM ai.usage), '-infinity') AS ok"""
        )[0]
        if row["ok"]:
            return first
        time.sleep(0.05)
        run_rollup(uri)
    raise AssertionError("the rollup watermark never caught up")


def raw_daily(sql: SQL, through: date) -> list[tuple[Any, ...]]:
    return norm(sql(RAW_DAILY.format(where="created_at < %s"), (at(through + timedelta(days=1), 0),)))


def rolled(sql: SQL) -> list[tuple[Any, ...]]:
    return norm(sql(ROLLED))


@pytest.fixture
def clean(sql: SQL) -> SQL:
    """Empty usage, rollups and the rollup state (configs too: usage rows reference them)."""
    sql("TRUNCATE " + ", ".join(f"ai.{t}" for t in ROLLUP_TABLES) + ", ai.configs CASCADE")
    return sql


@pytest.fixture
def uri(pg: EmbeddedPostgres) -> str:
    return pg.uri


def make_configs(sql: SQL, n: int) -> list[str]:
    ids = []
    for i in range(n):
        model = f"rollup/test-model-{i}-{uuid.uuid4().hex[:6]}"
        rows = sql("INSERT INTO ai.configs (model_id) VALUES (%s) RETURNING id", (model,))
        ids.append(str(rows[0]["id"]))
    return ids
