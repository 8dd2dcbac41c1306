"""Group commit of the writes after each answer: batching, error delivery, and no row lost or doubled."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from aigateway.db import Database, GroupCommit
from aigateway.local import EmbeddedPostgres
from aigateway.settings import Settings
from aigateway.store.usage import UsageRecord
from aigateway.usage_spool import UsageRecorder

from tests.support import SQL


async def test_a_lone_item_is_written_at_once() -> None:
    writes: list[list[int]] = []

    async def write(items: list[int]) -> None:
        writes.append(items)

    group = GroupCommit(write)
    await group.submit(1)
    assert writes == [[1]]
    await group.submit(2)
    assert writes == [[1], [2]]


async def test_items_arriving_during_a_write_share_the_next_one() -> None:
    writes: list[list[int]] = []
    gate = asyncio.Event()

    async def write(items: list[int]) -> None:
        writes.append(items)
        if len(writes) == 1:
            await gate.wait()  # hold the first write open while others arrive

    group = GroupCommit(write, max_batch=3)
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *rest)
    assert writes == [[0], [1, 2, 3], [4, 5]]  # one round trip per batch, capped at max_batch


async def test_a_failed_write_fails_exactly_its_own_submitters() -> None:
    gate = asyncio.Event()
    calls = 0

    async def write(items: list[int]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate.wait()
        if 13 in items:
            raise ValueError("refused")

    group = GroupCommit(write)
    first = asyncio.create_task(group.submit(1))
    await asyncio.sleep(0)
    doomed = [asyncio.create_task(group.submit(i)) for i in (12, 13)]
    await asyncio.sleep(0)
    gate.set()
    await first  # its own batch succeeded
    for task in doomed:
        with pytest.raises(ValueError, match="refused"):
            await task
    await group.submit(14)  # the writer keeps working after a failure


def _record(user: str, config_id: str | None = None) -> UsageRecord:
    return UsageRecord(
        request_id=uuid.uuid4().hex,
        model_id="openai/gpt-4o-mini",
        user_id=user,
        input_tokens=3,
        output_tokens=5,
        cost_usd=0.000002,
        config_id=config_id,
    )


@pytest.fixture
def recorder_factory(pg: EmbeddedPostgres, sql: SQL, tmp_path: Path) -> Any:
    sql("TRUNCATE ai.usage CASCADE")

    def make() -> tuple[UsageRecorder, Database]:
        db = Database(lambda: pg.uri, pool_size=4, prepare=True)
        return UsageRecorder(Settings(home=tmp_path), db), db

    return make


async def test_concurrent_records_all_land_once(recorder_factory: Any, sql: SQL) -> None:
    recorder, db = recorder_factory()
    records = [_record(f"u{i % 5}") for i in range(40)]
    await asyncio.gather(*(recorder.record(r) for r in records))
    await asyncio.gather(*(recorder.record(r) for r in records[:10]))  # replays insert nothing new
    await db.close()
    rows = sql("SELECT request_id, input_tokens, output_tokens FROM ai.usage")
    assert sorted(r["request_id"] for r in rows) == sorted(r.request_id for r in records)
    assert all((r["input_tokens"], r["output_tokens"]) == (3, 5) for r in rows)


async def test_a_refused_row_does_not_take_its_batch_mates_to_the_spool(
    recorder_factory: Any, sql: SQL, tmp_path: Path
) -> None:
    recorder, db = recorder_factory()
    good = [_record("ok") for _ in range(12)]
    bad = _record("bad", config_id=str(uuid.uuid4()))  # no such configuration: the foreign key refuses it
    await asyncio.gather(*(recorder.record(r) for r in [*good[:6], bad, *good[6:]]))
    await db.close()
    rows = sql("SELECT request_id FROM ai.usage")
    assert sorted(r["request_id"] for r in rows) == sorted(r.request_id for r in good)
    spooled = [p.stem for p in (tmp_path / "usage-spool").glob("*.json")]
    assert spooled == [bad.request_id]  # kept for inspection and replay, not lost
