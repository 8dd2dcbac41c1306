"""Recording usage so that a database failure never loses a paid-for answer, nor its quota charge.

A call is settled by one statement (`store.usage.settle`): its usage row, its charge against its
quota subject and the project, and the release of its quota hold, all or nothing. It runs after
the upstream answered and before the answer's last byte, within the database deadline. If
PostgreSQL does not answer in time, the record (with its subject) goes to a spool that outlives
the process and is settled later by the same statement; `request_id` is unique in `ai.usage` and
`quota_charged` says whether the row's charge was counted, so a replay that races a late success,
or a record replayed twice, inserts and charges once. A settle the database refuses (bad data,
not a lost connection) is retried apart — the row alone, then the user's and the project's
counters each on its own — so one bad value loses neither the row nor the project's count.

Which spool, and why:
- Locally: one JSON file per record under `$AIGATEWAY_HOME/usage-spool/`, written atomically
  (temp file + rename). It survives a crash or restart of the server. The server replays it at
  start-up, every `usage_replay_interval_s`, and (with back-off) soon after a record was spooled.
- On AWS: an SQS queue (USAGE_SPOOL_QUEUE_URL). A Lambda's /tmp dies with its execution
  environment and may never run again, so the record must leave the process; SQS is durable,
  needs no VPC route to the database, and the scheduled usage_summary function drains it
  before each rollup, long-polling until the queue has been empty a few times in a row.

A drain is one pass: one listing of the folder (or receives until the queue is empty), each
batch settled in one statement and acknowledged after it committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from .db import Database, GroupCommit
from .errors import GatewayError
from .private_files import write_private
from .settings import Settings
from .store import limits as limits_store
from .store import usage as store
from .store.usage import UsageRecord

log = logging.getLogger(__name__)
Batch = list[tuple[Any, UsageRecord]]  # (handle for `ack`, record)

SQS_LONG_POLL_S = 5  # WaitTimeSeconds of each receive
SQS_EMPTY_RECEIVES = 3  # a drain ends after this many empty receives in a row


class Spool(Protocol):
    async def put(self, record: UsageRecord) -> None: ...
    def batches(self, size: int, deadline: float | None = None) -> AsyncIterator[Batch]: ...
    async def ack(self, handles: list[Any]) -> None: ...
    def may_have_pending(self) -> bool: ...


class FileSpool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._pending = folder.exists() and any(folder.glob("*.json"))
        self._puts = 0  # records written by this process (a drain only sees those listed)

    async def put(self, record: UsageRecord) -> None:
        await asyncio.to_thread(self._write, record)
        self._puts += 1
        self._pending = True

    def _write(self, record: UsageRecord) -> None:
        write_private(self.folder / f"{record.request_id}.json", orjson.dumps(record.to_dict()))

    async def batches(self, size: int, deadline: float | None = None) -> AsyncIterator[Batch]:
        """The records present at one listing of the folder, `size` at a time (later ones wait
        for the next drain)."""
        puts = self._puts
        paths = await asyncio.to_thread(self._list)
        for start in range(0, len(paths), size):
            if deadline is not None and time.monotonic() >= deadline:
                return
            batch = await asyncio.to_thread(self._read, paths[start : start + size])
            if batch:
                yield batch
        self._pending = self._puts != puts  # a record spooled during the pass waits for the next

    def _list(self) -> list[Path]:
        if not self.folder.exists():
            return []
        return sorted(p for p in self.folder.iterdir() if p.suffix == ".json")

    def _read(self, paths: list[Path]) -> Batch:
        out: Batch = []
        for path in paths:
            try:
                out.append((path, UsageRecord.from_dict(orjson.loads(path.read_bytes()))))
            except FileNotFoundError:
                continue  # acknowledged by a concurrent drain
            except (OSError, orjson.JSONDecodeError, TypeError):
                log.error("unreadable usage spool file %s kept for inspection", path.name)
                path.rename(path.with_suffix(".bad"))
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
            from botocore.config import Config

            # Bounded: a slow or unreachable SQS endpoint must not hold an answer (put) or the
            # rollup (drain) for botocore's defaults (60 s reads, legacy retries).
            config = Config(
                connect_timeout=3,
                read_timeout=SQS_LONG_POLL_S + 5,
                retries={"total_max_attempts": 3, "mode": "standard"},
            )
            self._client = boto3.client("sqs", config=config)
        return self._client

    async def put(self, record: UsageRecord) -> None:
        body = orjson.dumps(record.to_dict()).decode()
        await asyncio.to_thread(self._sqs().send_message, QueueUrl=self.queue_url, MessageBody=body)

    async def take(self, limit: int, wait_s: int = 0) -> Batch:
        resp = await asyncio.to_thread(
            self._sqs().receive_message,
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, limit)),
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=60,
        )
        return [(m["ReceiptHandle"], UsageRecord.from_dict(orjson.loads(m["Body"]))) for m in resp.get("Messages", [])]

    async def batches(self, size: int, deadline: float | None = None) -> AsyncIterator[Batch]:
        """Long-polling receives until the queue was empty `SQS_EMPTY_RECEIVES` times in a row
        (one empty receive can be a miss: SQS samples its servers) or the deadline."""
        empty = 0
        while empty < SQS_EMPTY_RECEIVES:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            wait = SQS_LONG_POLL_S if left is None else max(0, min(SQS_LONG_POLL_S, int(left)))
            batch = await self.take(size, wait)
            empty = 0 if batch else empty + 1
            if batch:
                yield batch

    async def ack(self, handles: list[Any]) -> None:
        if handles:
            entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
            await asyncio.to_thread(self._sqs().delete_message_batch, QueueUrl=self.queue_url, Entries=entries)

    def may_have_pending(self) -> bool:
        return False  # drained by the scheduled function, not by request handlers


async def replay(db: Database, spool: Spool, *, batch: int = 100, deadline: float | None = None) -> int:
    """Settle spooled records (rows and owed charges, in the day and month of each call); returns
    how many were acknowledged. A batch is acknowledged only after it committed."""
    total = 0
    async for items in spool.batches(batch, deadline):
        await store.settle(db, [r for _, r in items])
        await spool.ack([h for h, _ in items])
        total += len(items)
    return total


async def settle_apart(db: Database, record: UsageRecord) -> None:
    """A record whose settle the database refused: the row first (marked charged when it has a
    subject, as its charge follows here), then the user's and the project's counters, each
    attempted whatever the other did. Raises if the row could not be written; a failed charge
    is logged as an error (the row is in: billing sees the call)."""
    await store.insert(db, record, charged=record.charge_subject is not None)
    if record.charge_subject is None:
        return
    tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
    at = datetime.fromisoformat(record.created_at) if record.created_at else None
    try:
        await limits_store.charge_user(
            db, subject=record.charge_subject, tokens=tokens, cost_usd=record.cost_usd, at=at
        )
    except Exception as exc:
        log.error("charging %d tokens to a user's quota counters failed: %r", tokens, exc)
    try:
        holds = [record.hold_id] if record.hold_id is not None else []
        await limits_store.charge_project(db, tokens=tokens, cost_usd=record.cost_usd, holds=holds, at=at)
    except Exception as exc:
        log.error("charging %d tokens to the project's quota counters failed: %r", tokens, exc)


class _Refused(Exception):
    """The database refused a settle statement (not: could not be reached)."""


class UsageRecorder:
    """Writes usage rows; on failure spools them and (locally) replays them in the background."""

    def __init__(self, settings: Settings, db: Database, spool: Spool | None = None) -> None:
        self.db = db
        self.spool: Spool = spool or (
            SqsSpool(settings.usage_spool_queue_url)
            if settings.usage_spool_queue_url
            else FileSpool(settings.home / "usage-spool")
        )
        self._drainer: asyncio.Task[None] | None = None
        self._periodic: asyncio.Task[None] | None = None
        self.retry_interval_s = 2.0
        self._recording: set[asyncio.Task[Any]] = set()  # calls being settled right now (shutdown waits)
        # Calls that finish together share one settle statement (db.GroupCommit); alone, a call
        # is settled at once.
        self._writes: GroupCommit[UsageRecord] = GroupCommit(self._settle)

    async def _settle(self, records: list[UsageRecord]) -> None:
        try:
            await store.settle(self.db, records)
        except GatewayError:
            raise  # the database is unreachable
        except Exception as exc:
            raise _Refused from exc

    async def record(self, record: UsageRecord) -> bool:
        """Settle one call: True when its row (and charge) is in the database, False when it was
        spooled (and is settled on replay). Never raises: the caller's answer is already paid
        for. Returns within about one database deadline (plus the spool write)."""
        me = asyncio.current_task()
        if me is not None:
            self._recording.add(me)
        try:
            try:
                await asyncio.wait_for(self._writes.submit(record), self.db.op_timeout_s)
            except _Refused as refused:
                # The database refused the statement (one bad row takes its group with it):
                # this call alone, then, if that is refused too, its row and charges apart.
                try:
                    await store.settle(self.db, [record])
                except GatewayError:
                    raise
                except Exception:
                    log.error("settling a call was refused (%r); writing it apart", refused.__cause__)
                    await settle_apart(self.db, record)
        except asyncio.CancelledError:
            # Shutting down mid-write: the row may or may not be in; the spool makes sure.
            await self._spool(record)
            raise
        except Exception as exc:
            log.warning("usage insert failed (%s); spooling %s", type(exc).__name__, record.request_id)
            await self._spool(record)
            stored = False
        else:
            stored = True
        finally:
            self._recording.discard(me)
        if self.spool.may_have_pending():
            self._ensure_drainer()
        return stored

    async def _spool(self, record: UsageRecord) -> None:
        try:
            if record.created_at is None:
                record.created_at = datetime.now(UTC).isoformat()
            await self.spool.put(record)
        except Exception:
            log.exception("usage spool failed too; record %s", orjson.dumps(record.to_dict()).decode())

    def _ensure_drainer(self) -> None:
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain_until_empty())

    async def _drain_until_empty(self) -> None:
        delay = self.retry_interval_s
        while self.spool.may_have_pending():
            try:
                await self.drain()
                delay = self.retry_interval_s
            except Exception as exc:
                log.info("usage spool replay waits for the database (%s)", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def start(self, interval_s: float) -> None:
        """Replay the spool now and then every `interval_s` (the local server's lifespan)."""
        if self._periodic is None or self._periodic.done():
            self._periodic = asyncio.get_running_loop().create_task(self._replay_forever(interval_s))

    async def _replay_forever(self, interval_s: float) -> None:
        while True:
            try:
                if n := await self.drain():
                    log.info("replayed %d spooled usage records", n)
            except Exception as exc:
                log.info("usage spool replay waits for the database (%s)", type(exc).__name__)
            await asyncio.sleep(interval_s)

    async def aclose(self, wait_s: float = 5.0) -> None:
        """Let calls being settled finish (at most `wait_s`: their rows land or are spooled), then
        stop the background replays (the spool keeps what they did not reach)."""
        await asyncio.sleep(0.05)  # calls cut off by the shutdown get to start settling
        if self._recording:
            await asyncio.wait(set(self._recording), timeout=wait_s)
        for task in (self._periodic, self._drainer):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._periodic = self._drainer = None

    async def drain(self, batch: int = 100) -> int:
        """Replay spooled records into PostgreSQL; returns how many were written."""
        return await replay(self.db, self.spool, batch=batch)
