"""What each metering statement costs on its own: wall and CPU time, median of N, one at a time.

The pieces of the metered floor (floor_server.py --metered) measured apart, on a throw-away
embedded PostgreSQL on core 0 with this process on core 1 (the bench's placement), through the
gateway's own `Database` (prepared statements, as the local server runs them):

* `SELECT 1`: one round trip and the driver, the least any statement costs;
* the admission (`store.limits.admit`: minute counters, quota sums, the hold; committed without
  waiting for the WAL flush);
* the settle (`store.usage.settle` through the group commit: the usage row, the quota charges,
  the hold release; committed with the WAL flushed), each after an admission of its own;
* a one-row insert committed durably and asynchronously: what the WAL flush alone costs.

Usage: python infra/bench/statements.py [--n 3000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

GENEROUS = {"u_day": 10**15, "u_month": 10**15, "u_spend": 1e9, "p_day": 10**15, "p_month": 10**15, "p_spend": 1e9}


def _pin(core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {core})


async def _measure(n: int, before: Callable[[], Awaitable[object]] | None, op: Callable[[], Awaitable[object]]) -> str:
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(n):
        if before is not None:
            await before()
        t, c = time.perf_counter(), time.thread_time()
        await op()
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return f"wall {statistics.median(wall) * 1e6:7.1f} µs   CPU {statistics.median(cpu) * 1e6:6.1f} µs"


async def _run(uri: str, n: int) -> None:
    from aigateway.db import Database, GroupCommit
    from aigateway.store import limits, usage

    db = Database(lambda: uri, schema="ai", prepare=True)
    settles: GroupCommit[usage.UsageRecord] = GroupCommit(lambda rows: usage.settle(db, rows))
    await db.execute("CREATE TABLE IF NOT EXISTS {s}.bench_one (id bigserial PRIMARY KEY, v integer)")
    holds: list[int | None] = []

    async def admit() -> None:
        verdict = await limits.admit(
            db, subject="user:bench-statements", user_rate=1_000_000, project_rate=1_000_000, quotas=GENEROUS,
            actor="bench", ip="127.0.0.1", details={}, hold_tokens=4200, hold_spend=0.01,
        )  # fmt: skip
        holds.append(verdict.hold_id)

    async def settle() -> None:
        record = usage.UsageRecord(
            request_id=str(uuid.uuid4()), model_id="openai/gpt-4o-mini", input_tokens=20, output_tokens=30,
            user_id="bench-statements", cost_usd=0.00012, key_source="env", latency_ms=1,
            charge_subject="user:bench-statements", hold_id=holds.pop(),
        )  # fmt: skip
        await settles.submit(record)

    async def select_one() -> None:
        await db.fetch("SELECT 1")

    async def insert_durable() -> None:
        await db.execute("INSERT INTO {s}.bench_one (v) VALUES (1)")

    async def insert_async() -> None:
        await db.execute("INSERT INTO {s}.bench_one (v) SELECT 1 FROM set_config('synchronous_commit', 'off', true)")

    try:
        print(f"SELECT 1                          {await _measure(n, None, select_one)}")
        print(f"admission                         {await _measure(n, None, admit)}")
        holds.clear()
        print(f"settle (after its own admission)  {await _measure(n, admit, settle)}")
        print(f"one-row insert, durable commit    {await _measure(n, None, insert_durable)}")
        print(f"one-row insert, async commit      {await _measure(n, None, insert_async)}")
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=3000, help="runs of each statement (3000)")
    args = parser.parse_args()

    import uvloop
    from aigateway.local import EmbeddedPostgres
    from aigateway.migrations import apply

    home = Path(tempfile.mkdtemp(prefix="aigw-statements-"))
    _pin(0)  # the server inherits core 0
    pg = EmbeddedPostgres(home / "pgdata", delete_on_exit=True)  # stopped and removed at exit
    uri = pg.start()
    apply(uri, "ai")
    _pin(1)
    uvloop.run(_run(uri, args.n))


if __name__ == "__main__":
    main()
