"""Recording usage so that a database failure never loses a paid-for answer.

The usage row is written after the upstream answered. If PostgreSQL refuses it, the record
goes to a spool that outlives the process and is replayed later; `request_id` is unique in
`ai.usage`, so a replay that races a late success inserts once.

Which spool, and why:
- Locally: one JSON file per record under `$AIGATEWAY_HOME/usage-spool/`, written atomically
  (temp file + rename). It survives a crash or restart of the server; a background task in
  the server retries every few seconds until the database is back.
- On AWS: an SQS queue (USAGE_SPOOL_QUEUE_URL). A Lambda's /tmp dies with its execution
  environment and may never run again, so the record must leave the process; SQS is durable,
  needs no VPC route to the database, and the scheduled usage_summary function drains it
  before each rollup.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

import orjson

from .db import Database, GroupCommit
from .errors import GatewayError
from .private_files import write_private
from .settings import Settings
from .store import usage as store
from .store.usage import UsageRecord

log = logging.getLogger(__name__)


class Spool(Protocol):
    async def put(self, record: UsageRecord) -> None: ...
    async def take(self, limit: int) -> list[tuple[Any, UsageRecord]]: ...
    async def ack(self, handles: list[Any]) -> None: ...
    def may_have_pending(self) -> bool: ...


class FileSpool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pending = folder.exists() and any(folder.glob("*.json"))

    async def put(self, record: UsageRecord) -> None:
        await asyncio.to_thread(self._write, record)
        self._pending = True

    def _write(self, record: UsageRecord) -> None:
        write_private(self.folder / f"{record.request_id}.json", orjson.dumps(record.to_dict()))

    async def take(self, limit: int) -> list[tuple[Any, UsageRecord]]:
        return await asyncio.to_thread(self._read, limit)

    def _read(self, limit: int) -> list[tuple[Any, UsageRecord]]:
        if not self.folder.exists():
            return []
        out: list[tuple[Any, UsageRecord]] = []
        for path in sorted(self.folder.glob("*.json"))[:limit]:
            try:
                out.append((path, UsageRecord.from_dict(orjson.loads(path.read_bytes()))))
            except (OSError, orjson.JSONDecodeError, TypeError):
                log.error("unreadable usage spool file %s kept for inspection", path.name)
                path.rename(path.with_suffix(".bad"))
        self._pending = bool(out)
        return out

    async def ack(self, handles: list[Any]) -> None:
        def unlink_all() -> None:
            for path in handles:
                Path(path).unlink(missing_ok=True)

        await asyncio.to_thread(unlink_all)

    def may_have_pending(self) -> bool:
        return self._pending


class SqsSpool:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url
        self._client: Any = None

    def _sqs(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sqs")
        return self._client

    async def put(self, record: UsageRecord) -> None:
        body = orjson.dumps(record.to_dict()).decode()
        await asyncio.to_thread(self._sqs().send_message, QueueUrl=self.queue_url, MessageBody=body)

    async def take(self, limit: int) -> list[tuple[Any, UsageRecord]]:
        resp = await asyncio.to_thread(
            self._sqs().receive_message,
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, limit),
            WaitTimeSeconds=0,
            VisibilityTimeout=60,
        )
        out = []
        for m in resp.get("Messages", []):
            out.append((m["ReceiptHandle"], UsageRecord.from_dict(orjson.loads(m["Body"]))))
        return out

    async def ack(self, handles: list[Any]) -> None:
        if handles:
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
            await asyncio.to_thread(self._sqs().delete_message_batch, QueueUrl=self.queue_url, Entries=entries)

    def may_have_pending(self) -> bool:
        return False  # drained by the scheduled function, not by request handlers


class _BatchRefused(Exception):
    """The database refused a multi-row insert (not: could not be reached)."""


class UsageRecorder:
    """Writes usage rows; on failure spools them and (locally) retries in the background."""

    def __init__(self, settings: Settings, db: Database, spool: Spool | None = None) -> None:
        self.db = db
        self.spool: Spool = spool or (
            SqsSpool(settings.usage_spool_queue_url)
            if settings.usage_spool_queue_url
            else FileSpool(settings.home / "usage-spool")
        )
        self._drainer: asyncio.Task[None] | None = None
        self.retry_interval_s = 2.0
        # Rows of requests that finish together share one INSERT (db.GroupCommit); alone, a row
        # is inserted at once exactly as before.
        self._writes: GroupCommit[UsageRecord] = GroupCommit(self._insert)

    async def _insert(self, records: list[UsageRecord]) -> None:
        try:
            await store.insert_batch(self.db, records)
        except GatewayError:
            raise  # the database is unreachable
        except Exception as exc:
            if len(records) > 1:
                raise _BatchRefused from exc
            raise

    async def record(self, record: UsageRecord) -> None:
        """Never raises: the caller's answer is already paid for."""
        try:
            try:
                await self._writes.submit(record)
            except _BatchRefused:
                # The database refused a batch: insert this row alone, so one bad row cannot
                # take the rows batched with it to the spool.
                await store.insert(self.db, record)
        except Exception as exc:
            log.warning("usage insert failed (%s); spooling %s", type(exc).__name__, record.request_id)
            try:
                if record.created_at is None:
                    from datetime import datetime

                    record.created_at = datetime.now(UTC).isoformat()
                await self.spool.put(record)
            except Exception:
                log.exception("usage spool failed too; record %s", orjson.dumps(record.to_dict()).decode())
                return
        if self.spool.may_have_pending():
            self._ensure_drainer()

    def _ensure_drainer(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain_until_empty())

    async def _drain_until_empty(self) -> None:
        delay = self.retry_interval_s
        while self.spool.may_have_pending():
            try:
                if await self.drain() == 0:
                    return
                delay = self.retry_interval_s
            except Exception as exc:
                log.info("usage spool replay waits for the database (%s)", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def drain(self, batch: int = 100) -> int:
        """Replay spooled records into PostgreSQL; returns how many were written."""
        total = 0
        while True:
            items = await self.spool.take(batch)
            if not items:
                return total
            await store.insert_batch(self.db, [r for _, r in items])
            await self.spool.ack([h for h, _ in items])
            total += len(items)
