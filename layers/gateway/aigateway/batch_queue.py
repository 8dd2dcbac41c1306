"""Where a batch's items wait for a worker: an SQS queue on AWS, an in-process queue locally.

Both carry only references (batch id, custom id); the item itself is read from the database
when it runs, so a message says nothing about who the item runs as.

- On AWS (`BATCH_QUEUE_URL` set): one SQS message per item, sent ten to a call. The batch
  worker function consumes the queue (functions/batch_worker): SQS delivers at least once, a
  failed item comes back after the visibility timeout, and after `maxReceiveCount` deliveries
  it lands in the dead-letter queue.
- Locally: `LocalBatchQueue` runs the same item code on the server's event loop with at most
  `batch_local_concurrency` items at a time. At start-up it takes up again every item left open
  by an earlier run (the server was killed mid-batch): local at-least-once delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson

log = logging.getLogger(__name__)

Ref = tuple[str, str]  # (batch_id, custom_id)
RunItem = Callable[[str, str], Awaitable[float | None]]  # seconds until it should run again, or None: done
SQS_BATCH = 10


class BatchQueue(Protocol):
    async def send(self, refs: list[Ref]) -> None: ...
    async def aclose(self) -> None: ...


def message(ref: Ref) -> str:
    return orjson.dumps({"batchId": ref[0], "customId": ref[1]}).decode()


def read_message(body: str) -> Ref:
    """The item a queue message names; ValueError for anything else."""
    data = orjson.loads(body)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("batchId"), str)
        or not isinstance(data.get("customId"), str)
    ):
        raise ValueError("not a batch item message")
    return data["batchId"], data["customId"]


class LocalBatchQueue:
    """`concurrency` workers on the running event loop, started with the first item."""

    def __init__(self, concurrency: int, run: RunItem) -> None:
        self.concurrency = max(1, concurrency)
        self._run = run
        self._queue: asyncio.Queue[Ref] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._later: set[asyncio.TimerHandle] = set()

    def _ensure(self) -> asyncio.Queue[Ref]:
        if self._queue is None or not self._workers:
            self._queue = asyncio.Queue()
            self._workers = [asyncio.create_task(self._work(self._queue)) for _ in range(self.concurrency)]
        return self._queue

    async def send(self, refs: list[Ref]) -> None:
        queue = self._ensure()
        for ref in refs:
            queue.put_nowait(ref)

    async def _work(self, queue: asyncio.Queue[Ref]) -> None:
        while True:
            ref = await queue.get()
            try:
                again = await self._run(*ref)
            except Exception:
                log.exception("a batch item failed to run; it is retried in 5 s")
                again = 5.0
            finally:
                queue.task_done()
            if again is not None:
                self._retry(queue, ref, again)

    def _retry(self, queue: asyncio.Queue[Ref], ref: Ref, after_s: float) -> None:
        handle: asyncio.TimerHandle | None = None

        def put() -> None:
            if handle is not None:
                self._later.discard(handle)
            queue.put_nowait(ref)

        handle = asyncio.get_running_loop().call_later(after_s, put)
        self._later.add(handle)

    async def aclose(self) -> None:
        for handle in self._later:
            handle.cancel()
        self._later.clear()
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._workers = []


class SqsBatchQueue:
    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url
        self._client: Any = None

    def _sqs(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=3, read_timeout=10, retries={"total_max_attempts": 3, "mode": "standard"})
            self._client = boto3.client("sqs", config=config)
        return self._client

    def _send_sync(self, refs: list[Ref]) -> None:
        sqs = self._sqs()
        for start in range(0, len(refs), SQS_BATCH):
            chunk = refs[start : start + SQS_BATCH]
            entries = [{"Id": str(i), "MessageBody": message(ref)} for i, ref in enumerate(chunk)]
            resp = sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            failed = resp.get("Failed") or []
            if failed:  # retried one by one; a message SQS still refuses raises to the submitter
                for f in failed:
                    sqs.send_message(QueueUrl=self.queue_url, MessageBody=entries[int(f["Id"])]["MessageBody"])

    async def send(self, refs: list[Ref]) -> None:
        await asyncio.to_thread(self._send_sync, refs)

    async def aclose(self) -> None:
        return None
