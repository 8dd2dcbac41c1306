"""The daily usage rollup: equal to the raw aggregation, incremental, idempotent, safe at once."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from aigateway.store.rollups import LOCK_ID

from .conftest import (
    SQL,
    at,
    insert_usage,
    make_configs,
    raw_daily,
    roll_up_all,
    rolled,
    run_rollup,
    today,
)


def _sample(sql: SQL) -> list[dict[str, Any]]:
    """Rows over six past days, today and tomorrow, with NULLs and '' where the columns allow them."""
    t = today(sql)
    c1, c2 = make_configs(sql, 2)
    rows: list[dict[str, Any]] = []
    for back in range(1, 7):
        day = t - timedelta(days=back)
        rows += [
            {
                "created_at": at(day, 0, 0),
                "model_id": "a/m1",
                "config_id": c1,
                "user_id": "u1",
                "input_tokens": 10 * back,
                "output_tokens": 5,
                "cost_usd": Decimal("0.0000012345"),
            },
            {
                "created_at": at(day, 23, 59, 59, 999_999),
                "model_id": "a/m1",
                "config_id": c1,
                "user_id": "u1",
                "input_tokens": 7,
                "cost_usd": Decimal("0.5"),
            },
            {
                "created_at": at(day, 8),
                "model_id": "b/m2",
                "config_id": c2,
                "user_id": None,
                "kind": "images",
                "image_count": 2,
                "cost_usd": Decimal("0.04"),
            },
            {
                "created_at": at(day, 9),
                "model_id": "b/m2",
                "config_id": None,
                "user_id": "",
                "input_tokens": 3,
                "output_tokens": 4,
            },
            {"created_at": at(day, 10), "model_id": None, "config_id": None, "user_id": "u2"},
            {"created_at": at(day, 11), "model_id": "b/m2", "config_id": None, "user_id": None, "input_tokens": 1},
        ]
    rows += [
        {"created_at": at(t, 0, 0, 0, 1), "model_id": "a/m1", "config_id": c1, "user_id": "u1", "input_tokens": 1},
        {"created_at": at(t + timedelta(days=1), 1), "model_id": "a/m1", "user_id": "u3", "output_tokens": 2},
    ]
    insert_usage(sql, rows)
    return rows


def test_rollup_equals_the_raw_aggregation_of_whole_days(clean: SQL, uri: str) -> None:
    sql = clean
    _sample(sql)
    result = roll_up_all(sql, uri)
    yesterday = today(sql) - timedelta(days=1)

    assert rolled(sql) == raw_daily(sql, yesterday)
    # Two rows share a group each day; a NULL user and the user '' stay apart, as do NULL model/config.
    assert len(rolled(sql)) == 6 * 5
    state = sql("SELECT rolled_through FROM ai.usage_rollup_state")[0]
    assert state["rolled_through"] == yesterday
    assert not sql("SELECT 1 FROM ai.usage_daily WHERE day >= %s", (yesterday + timedelta(days=1),))

    assert result["days_rolled_up"] == 6 and result["rows"] == 30
    assert result["first_day"] == (yesterday - timedelta(days=5)).isoformat()
    assert result["last_day"] == yesterday.isoformat()
    raw = sql(
        """SELECT count(*) AS n, sum(COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0)) AS t,
                  sum(cost_usd) AS c FROM ai.usage WHERE created_at < %s""",
        (at(yesterday + timedelta(days=1), 0),),
    )[0]
    assert result["totals"]["requests"] == raw["n"] == 36
    assert result["totals"]["total_tokens"] == raw["t"]
    assert result["totals"]["cost_usd"] == round(float(raw["c"]), 10)
    assert result["added"] == result["totals"]


def test_running_twice_changes_nothing(clean: SQL, uri: str) -> None:
    sql = clean
    _sample(sql)
    roll_up_all(sql, uri)
    first = rolled(sql)
    second = run_rollup(uri)
    assert rolled(sql) == first
    assert second["days_rolled_up"] == 0 and second["rows"] == 0
    assert all(v == 0 for v in second["added"].values())


def test_two_runs_at_once_serialise_and_agree(clean: SQL, uri: str, sql: SQL) -> None:
    _sample(clean)
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(run_rollup(uri))
        except BaseException as exc:
            errors.append(exc)

    # Hold the rollup lock so both runs are provably inside roll_up, waiting, at the same time.
    with psycopg.connect(uri, autocommit=True) as holder:
        with holder.transaction():
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_ID,))
            threads = [threading.Thread(target=worker) for _ in range(2)]
            for th in threads:
                th.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                waiting = sql(
                    "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = %s",
                    (LOCK_ID,),
                )[0]["n"]
                if waiting == 2:
                    break
                time.sleep(0.01)
            assert waiting == 2
        for th in threads:
            th.join(timeout=30)

    assert not errors, errors
    assert len(results) == 2
    yesterday = today(sql) - timedelta(days=1)
    assert rolled(sql) == raw_daily(sql, yesterday)
    # Whatever the order, the rows were counted once: what the two runs added sums to the total.
    assert sum(r["added"]["requests"] for r in results) == 36
    assert sorted(r["days_rolled_up"] for r in results) == [0, 6]


def test_a_late_row_for_an_old_day_is_rolled_up_next_run(clean: SQL, uri: str) -> None:
    sql = clean
    _sample(sql)
    roll_up_all(sql, uri)
    old_day = today(sql) - timedelta(days=5)
    before = sql("SELECT requests, cost_usd FROM ai.usage_daily WHERE day = %s AND model_id = 'a/m1'", (old_day,))[0]

    # A record replayed from the usage spool keeps the time of the call.
    insert_usage(
        sql,
        [
            {
                "created_at": at(old_day, 13),
                "model_id": "a/m1",
                "config_id": None,
                "user_id": "late",
                "input_tokens": 100,
                "cost_usd": Decimal("1.25"),
            }
        ],
    )
    result = roll_up_all(sql, uri)

    assert result["days_rolled_up"] == 1 and result["first_day"] == old_day.isoformat()
    assert result["added"]["requests"] == 1 and result["added"]["cost_usd"] == 1.25
    assert rolled(sql) == raw_daily(sql, today(sql) - timedelta(days=1))
    late = sql("SELECT requests, input_tokens FROM ai.usage_daily WHERE day = %s AND user_id = 'late'", (old_day,))
    assert late == [{"requests": 1, "input_tokens": 100}]
    after = sql(
        "SELECT requests, cost_usd FROM ai.usage_daily WHERE day = %s AND model_id = 'a/m1' AND user_id = 'u1'",
        (old_day,),
    )[0]
    assert after == before


def test_a_day_becomes_whole_on_the_first_run_after_midnight(clean: SQL, uri: str) -> None:
    sql = clean
    t = today(sql)
    insert_usage(sql, [{"created_at": at(t - timedelta(days=1), 6), "user_id": "u"}])
    roll_up_all(sql, uri)
    # Pretend the previous run happened two days ago: yesterday was not whole then, and its rows
    # are all older than the watermark. The next run must still roll yesterday up.
    sql("DELETE FROM ai.usage_daily")
    sql("UPDATE ai.usage_rollup_state SET rolled_through = %s", (t - timedelta(days=2),))
    result = run_rollup(uri)
    assert result["days_rolled_up"] == 1 and result["first_day"] == (t - timedelta(days=1)).isoformat()
    assert rolled(sql) == raw_daily(sql, t - timedelta(days=1))


def test_a_row_committed_after_the_run_started_is_not_lost(clean: SQL, uri: str, sql: SQL) -> None:
    """A usage insert still open while the rollup runs gets stamped before the run's clock, but is
    invisible to it: the watermark must stay below it, so the summary reads it raw and the next run
    rolls it up."""
    import asyncio

    from aigateway.db import Database
    from aigateway.store.usage import summary

    old_day = today(sql) - timedelta(days=3)
    insert_usage(sql, [{"created_at": at(old_day, 1), "user_id": "u", "input_tokens": 1}])
    with psycopg.connect(uri) as slow:  # not autocommit: the INSERT stays open
        slow.execute(
            "INSERT INTO ai.usage (request_id, model_id, user_id, input_tokens, created_at)"
            " VALUES ('slow-1', 'a/m1', 'u', 41, %s)",
            (at(old_day, 2),),
        )
        time.sleep(0.01)
        first = run_rollup(uri)
        slow.commit()
    stamped = sql("SELECT inserted_at FROM ai.usage WHERE request_id = 'slow-1'")[0]["inserted_at"]
    assert datetime.fromisoformat(first["watermark"]) < stamped

    async def total() -> int:
        db = Database(lambda: uri, schema="ai")
        try:
            t, _ = await summary(db, start=None, end=None, config_id=None, user_id=None, group_by=None)
            return int(t["total_input_tokens"])
        finally:
            await db.close()

    assert asyncio.run(total()) == 42  # rollup (1) + the late-committed raw row (41)
    roll_up_all(sql, uri)
    assert sql("SELECT sum(input_tokens) AS n FROM ai.usage_daily WHERE day = %s", (old_day,)) == [{"n": 42}]
    assert asyncio.run(total()) == 42
