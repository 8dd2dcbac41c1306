"""Spool replay: owed quota charges are counted exactly once; the spool is replayed at start-up
and periodically without a request; the SQS drain long-polls past an empty receive."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from aigateway.api.local import local_app
from aigateway.db import Database
from aigateway.local import EmbeddedPostgres, with_usage_replay
from aigateway.rollup import drain_spool
from aigateway.services import Services
from aigateway.settings import Settings
from aigateway.store import usage as store
from aigateway.store.usage import UsageRecord
from aigateway.usage_spool import FileSpool, SqsSpool, replay

from tests.support import SQL, MakeGateway, wait_for


def _record(subject: str | None, tokens: int = 10, user: str = "replayed") -> UsageRecord:
    return UsageRecord(
        request_id="req-" + uuid.uuid4().hex,
        model_id="openai/gpt-4o-mini",
        input_tokens=tokens,
        output_tokens=tokens,
        user_id=user,
        created_at="2026-12-01T10:00:00+00:00",
        charge_subject=subject,
    )


def _charged(sql: SQL, subject: str) -> int:
    rows = sql(
        "SELECT coalesce(sum(tokens), 0) AS t FROM ai.quota_counters"
        " WHERE scope = 'user' AND subject = %s AND period = 'month'",
        [subject],
    )
    return int(rows[0]["t"])


@pytest.fixture
def clean(sql: SQL) -> SQL:
    sql("TRUNCATE ai.usage, ai.quota_counters")
    return sql


def test_replay_charges_each_spooled_call_exactly_once(pg: EmbeddedPostgres, clean: SQL, tmp_path: Path) -> None:
    sql = clean
    new, late, anonymous = _record("s1", 10), _record("s1", 100), _record(None, 1000)
    spool = FileSpool(tmp_path / "spool")

    async def scenario() -> tuple[int, int]:
        db = Database(lambda: pg.uri, schema="ai")
        await store.insert(db, late)  # its row reached the database on its own, after the caller's deadline
        for r in (new, late, anonymous):
            await spool.put(r)
        first = await replay(db, spool)
        # A crash after the commit and before the acknowledgement: the same records come back.
        for r in (new, late):
            await spool.put(r)
        second = await replay(db, spool)
        await db.close()
        return first, second

    first, second = asyncio.run(scenario())
    assert (first, second) == (3, 2)
    assert len(sql("SELECT 1 FROM ai.usage")) == 3
    assert _charged(sql, "s1") == 2 * 10 + 2 * 100, "the new row and the late row, once each"
    assert not list((tmp_path / "spool").glob("*.json"))


def _spool_file(home: Path, record: UsageRecord) -> None:
    folder = home / "usage-spool"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{record.request_id}.json").write_bytes(orjson.dumps(record.to_dict()))


def test_the_local_server_replays_at_start_up_and_periodically(
    make_gateway: MakeGateway, sql: SQL, tmp_path: Path
) -> None:
    before = _record("user-start", 7, user="start-up")
    _spool_file(tmp_path, before)  # left by an earlier run that could not reach the database

    def app(services: Services) -> Any:
        return with_usage_replay(local_app(services), services)

    make_gateway(app_factory=app, home=tmp_path, usage_replay_interval_s=0.3)
    rows = wait_for(lambda: sql("SELECT user_id FROM ai.usage WHERE request_id = %s", [before.request_id]), 10)
    assert rows, "the spool was not replayed at start-up"
    assert wait_for(lambda: _charged(sql, "user-start") == 14, 5), "the replayed call was not charged"

    later = _record("user-later", 3, user="later")
    _spool_file(tmp_path, later)  # e.g. written by a process that died before replaying it
    assert wait_for(lambda: sql("SELECT 1 FROM ai.usage WHERE request_id = %s", [later.request_id]), 10)


def test_the_sqs_drain_long_polls_past_an_empty_receive(aws: None, pg: EmbeddedPostgres, clean: SQL) -> None:
    sql = clean
    url = boto3.client("sqs").create_queue(QueueName="usage-spool")["QueueUrl"]
    late = _record("sqs-user", 5, user="sqs")

    def send_later() -> None:
        time.sleep(1.5)  # the queue is empty when the drain starts
        asyncio.run(SqsSpool(url).put(late))

    sender = threading.Thread(target=send_later)
    sender.start()
    settings = Settings(database_url=pg.uri, usage_spool_queue_url=url)

    async def drain() -> int:
        db = Database(lambda: pg.uri, schema="ai")
        try:
            return await drain_spool(settings, db, time.monotonic() + 8)
        finally:
            await db.close()

    started = time.monotonic()
    drained = asyncio.run(drain())
    sender.join()
    assert drained == 1 and time.monotonic() - started < 10
    assert sql("SELECT user_id FROM ai.usage")[0]["user_id"] == "sqs"
    assert _charged(sql, "sqs-user") == 10


def test_the_sqs_client_has_bounded_timeouts_and_retries(aws: None) -> None:
    config = SqsSpool("https://sqs.us-east-1.amazonaws.com/123456789012/q")._sqs().meta.config
    assert config.connect_timeout <= 5 and config.read_timeout <= 15
    assert config.retries["total_max_attempts"] <= 3 and config.retries["mode"] == "standard"


def test_a_drain_is_one_listing_of_the_folder(tmp_path: Path) -> None:
    """Batches come from one listing: a record spooled during the pass waits for the next one
    (a listing per batch would make a drain of n records cost n²/batch file look-ups)."""
    spool = FileSpool(tmp_path / "spool")

    async def scenario() -> tuple[int, int, bool]:
        for _ in range(250):
            await spool.put(_record("s", 1))
        batches = spool.batches(100)
        first = await anext(batches)
        await spool.put(_record("s", 1))  # arrives after the listing
        rest = [b async for b in batches]
        return len(first) + sum(len(b) for b in rest), len(rest) + 1, spool.may_have_pending()

    seen, batches, pending = asyncio.run(scenario())
    assert (seen, batches) == (250, 3)
    assert pending, "the late record is left for the next pass"
