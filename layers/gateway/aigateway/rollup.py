"""The scheduled usage rollup: drain the usage spool, then roll ai.usage up into ai.usage_daily.

`handler` is the usage_summary Lambda (EventBridge Scheduler, hourly); `aigateway summarize`
calls `main`. Cold start matters more than convenience here: this module imports psycopg and the
gateway's settings/db/store modules only, no web framework, no boto3 and no Powertools (the
spool drain imports boto3 only when a queue is configured; the CloudWatch metrics are an
Embedded Metric Format log line written by hand, which is all Powertools Metrics would print).

After the rollup, the response and embeddings cache's expired entries are deleted (store/cache.py).

A run is one transaction under an advisory lock (so two runs at once serialise), recomputes whole
UTC days from raw rows (so running twice changes nothing) and records a watermark (so the next
run only looks at rows inserted since). See migrations/004_usage_daily.sql for the invariant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from .db import Conn, Database
from .logs import bound_request_id, configure_logging, request_id_var
from .settings import Settings
from .store import rollups as sql

log = logging.getLogger(__name__)

_BEGINNING = datetime.min.replace(tzinfo=UTC)
_EPSILON = timedelta(microseconds=1)
_COUNTS = ("requests", "input_tokens", "output_tokens", "total_tokens", "image_count")
_METRICS = (
    ("DaysRolledUp", "days_rolled_up", "Count"),
    ("RollupRows", "rows", "Count"),
    ("SpoolDrained", "spool_drained", "Count"),
    ("SpoolErrors", "spool_errors", "Count"),
    ("CacheEntriesExpired", "cache_expired", "Count"),
    ("RollupDuration", "duration_ms", "Milliseconds"),
)
_ADDED = (
    ("Requests", "requests", "Count"),
    ("InputTokens", "input_tokens", "Count"),
    ("OutputTokens", "output_tokens", "Count"),
    ("TotalTokens", "total_tokens", "Count"),
    ("Images", "image_count", "Count"),
    ("CostUsd", "cost_usd", "None"),
)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _sums(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: int(row.get(k) or 0) for k in _COUNTS}
    out["cost_usd"] = Decimal(row.get("cost_usd") or 0)
    return out


def _money(value: Decimal) -> float:
    return round(float(value), 10)


async def roll_up(db: Database) -> dict[str, Any]:
    """One incremental, idempotent rollup run; returns what it did (days, rows, totals).

    Runs through `Database.run`, so a connection the server closed while the function slept
    between schedules is replaced once instead of failing the run.
    """
    started = time.perf_counter()
    result = await db.run(lambda conn: _roll_up(conn, db))
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


async def _roll_up(conn: Conn, db: Database) -> dict[str, Any]:
    async with conn.transaction():
        await conn.execute(sql.LOCK, (sql.LOCK_ID,))
        state = await sql.one(conn, db.q(sql.STATE))
        now: datetime = (await sql.one(conn, sql.CLOCK))["now"]
        oldest: datetime | None = (await sql.one(conn, sql.OLDEST_OPEN))["oldest"]

        old_watermark: datetime = state.get("watermark") or _BEGINNING
        old_through: date | None = state.get("rolled_through")
        # Every row stamped at or before `watermark` is committed and visible from here on.
        watermark = max(old_watermark, min(now, oldest or now) - _EPSILON)
        through = now.astimezone(UTC).date() - timedelta(days=1)
        if old_through is not None:
            through = max(through, old_through)
        old_end = _midnight(old_through) + timedelta(days=1) if old_through else _BEGINNING
        new_end = _midnight(through) + timedelta(days=1)

        days = await sql.affected_days(
            conn,
            db.q(sql.AFFECTED_DAYS),
            old_watermark=old_watermark,
            watermark=watermark,
            old_end=old_end,
            new_end=new_end,
        )
        before = after = _sums({})
        rows = 0
        if days:
            before = _sums(await sql.one(conn, db.q(sql.DELETE_DAYS), {"days": days}))
            inserted = await sql.one(
                conn,
                db.q(sql.INSERT_DAYS),
                {
                    "days": days,
                    "lo": _midnight(days[0]),
                    "hi": _midnight(days[-1]) + timedelta(days=1),
                    "watermark": watermark,
                },
            )
            rows = int(inserted.get("rows") or 0)
            after = _sums(inserted)
        await conn.execute(db.q(sql.SAVE_STATE), {"watermark": watermark, "rolled_through": through})

    added = {k: after[k] - before[k] for k in after}
    return {
        "days_rolled_up": len(days),
        "first_day": days[0].isoformat() if days else None,
        "last_day": days[-1].isoformat() if days else None,
        "rows": rows,
        "rolled_through": through.isoformat(),
        "watermark": watermark.astimezone(UTC).isoformat(),
        # The recomputed days' totals, and what this run added to the rollups (sums of `added`
        # over runs = everything rolled up; `totals` counts a recomputed day again).
        "totals": {k: (_money(v) if k == "cost_usd" else v) for k, v in after.items()},
        "added": {k: (_money(v) if k == "cost_usd" else v) for k, v in added.items()},
    }


async def drain_spool(settings: Settings, db: Database, deadline: float) -> int:
    """Replay usage records spooled to SQS while the database was away; returns how many.

    Inserts are idempotent on request_id and a message is deleted only after its batch
    committed, so a crash between the two replays the batch harmlessly; owed quota charges are
    counted for the rows inserted (usage_spool.replay). Long-polls until the queue stays empty,
    and stops at `deadline` (time.monotonic()) so the rollup still runs within the Lambda timeout.
    """
    if not settings.usage_spool_queue_url:
        return 0
    from .usage_spool import SqsSpool, replay

    return await replay(db, SqsSpool(settings.usage_spool_queue_url), batch=10, deadline=deadline)


async def run(settings: Settings, db: Database, budget_s: float = 240.0) -> dict[str, Any]:
    """Drain the spool (within `budget_s` seconds), then roll up. A drain failure is reported, not raised:
    the rollup of what is already in the database should not wait for SQS."""
    drained, spool_errors = 0, 0
    try:
        drained = await drain_spool(settings, db, time.monotonic() + budget_s)
    except Exception as exc:
        spool_errors = 1
        # The type only: an SQS error message can carry the queue URL and account.
        log.warning("usage spool drain failed", extra={"error": type(exc).__name__})
    result = await roll_up(db)
    result["spool_drained"] = drained
    result["spool_errors"] = spool_errors
    result["cache_expired"] = await sweep_cache(db)
    if settings.openrouter_batches != "off":
        result["upstream_batch_items_settled"] = await settle_upstream_batches(settings, db)
    if settings.batch_queue_url:  # locally the server sweeps: this process's queue would die with it
        result["batch_items_resent"], result["batch_items_expired"] = await sweep_batches(settings, db)
    return result


async def sweep_cache(db: Database) -> int:
    """Delete the response and embeddings cache's expired entries (never served anyway: this
    frees their space). A failure is logged, not raised: the next run sweeps them."""
    from .store import cache

    try:
        return await db.run(lambda conn: cache.sweep(conn, db))
    except Exception as exc:
        log.warning("cache sweep failed", extra={"error": type(exc).__name__})
        return 0


async def settle_upstream_batches(settings: Settings, db: Database) -> int:
    """Poll the OpenRouter batches still running and settle those that ended
    (flows/openrouter_batches.py). Imported only where the option is on: the upstream client and
    key resolution cost cold-start time the rollup does not otherwise pay. Never raises."""
    from .flows.openrouter_batches import poll
    from .services import Services

    svc = Services(settings=settings, db=db)
    try:
        return await poll(svc)
    except Exception as exc:
        log.warning("settling upstream batches failed", extra={"error": type(exc).__name__})
        return 0
    finally:
        await svc.close_clients()  # the database is the rollup's


async def sweep_batches(settings: Settings, db: Database) -> tuple[int, int]:
    """Queue again, or fail, the batch items whose queue message is gone (flows/batch_sweep.py);
    (re-sent, expired). Never raises: the next run sweeps them."""
    from .flows.batch_sweep import sweep
    from .services import Services

    svc = Services(settings=settings, db=db)
    try:
        done = await sweep(svc)
    except Exception as exc:
        log.warning("batch sweep failed", extra={"error": type(exc).__name__})
        return 0, 0
    finally:
        await svc.close_clients()  # the database is the rollup's
    return done.resent, done.expired


def _log(level: str, message: str, **fields: Any) -> None:
    """The run's report: always one JSON line on stdout (it is the output of `aigateway summarize`
    too, whatever the log level or format), shaped like aigateway.logs' JSON records."""
    doc = {
        "level": level,
        "message": message,
        "logger": __name__,
        "request_id": request_id_var.get(),
        "service": os.environ.get("POWERTOOLS_SERVICE_NAME") or "aigateway",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        **fields,
    }
    print(json.dumps(doc, separators=(",", ":"), default=str), flush=True)


def emf(result: dict[str, Any], now_ms: int | None = None) -> dict[str, Any]:
    """The run's CloudWatch metrics as an Embedded Metric Format document (one log line)."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME") or "aigateway"
    values: dict[str, Any] = {name: result.get(key, 0) for name, key, _ in _METRICS}
    values.update({name: result["added"][key] for name, key, _ in _ADDED})
    units = {name: unit for name, _, unit in (*_METRICS, *_ADDED)}
    return {
        "_aws": {
            "Timestamp": now_ms if now_ms is not None else int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "AIGateway",
                    "Dimensions": [["service"]],
                    "Metrics": [{"Name": n, "Unit": units[n]} for n in values],
                }
            ],
        },
        "service": service,
        **values,
    }


def report(result: dict[str, Any]) -> None:
    """One structured log line with the totals, then the EMF line CloudWatch turns into metrics."""
    _log("INFO", "usage rollup", **result)
    print(json.dumps(emf(result), separators=(",", ":")), flush=True)


@dataclass(frozen=True)
class Runtime:
    """What one execution environment keeps between invocations: one event loop and one Database
    (Database binds its connections to the loop, so the connection opened by the first invocation
    is reused by the next ones), and the settings both were built from."""

    loop: asyncio.AbstractEventLoop
    settings: Settings
    db: Database

    @classmethod
    def create(cls, settings: Settings | None = None) -> Runtime:
        from .secrets import conninfo

        s = settings or Settings.from_env()
        configure_logging(s)
        db = Database(
            lambda: conninfo(s),
            schema=s.db_schema,
            pool_size=1,
            connect_timeout_s=s.db_connect_timeout_s,
        )
        return cls(loop=asyncio.new_event_loop(), settings=s, db=db)

    def close(self) -> None:
        """Close the connection and the loop (tests; Lambda just freezes the environment)."""
        try:
            self.loop.run_until_complete(self.db.close())
        finally:
            self.loop.close()


_env: Runtime | None = None


def runtime() -> Runtime:
    """This execution environment's runtime, created by the first invocation."""
    global _env
    if _env is None:
        _env = Runtime.create()
    return _env


def reset_runtime() -> None:
    """Forget (and close) the execution environment's runtime: the next invocation starts afresh."""
    global _env
    env, _env = _env, None
    if env is not None:
        env.close()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (scheduled event; the event's content is not used)."""
    env = runtime()
    remaining_s = context.get_remaining_time_in_millis() / 1000.0 if context is not None else 300.0
    # Leave the rollup and the report at least a minute (or half of a short timeout).
    budget_s = max(remaining_s - 60.0, remaining_s / 2)
    with bound_request_id(getattr(context, "aws_request_id", None)):
        result = env.loop.run_until_complete(run(env.settings, env.db, budget_s))
        report(result)
    return result


def main(settings: Settings | None = None) -> int:
    """`aigateway summarize`: one run against the configured database, the report on stdout."""
    s = settings or Settings.from_env()
    configure_logging(s)

    async def once() -> dict[str, Any]:
        from .secrets import conninfo

        db = Database(lambda: conninfo(s), schema=s.db_schema, connect_timeout_s=s.db_connect_timeout_s)
        try:
            return await run(s, db)
        finally:
            await db.close()

    report(asyncio.run(once()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
