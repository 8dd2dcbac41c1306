"""The batch worker Lambda: SQS messages naming batch items in, a partial batch response out.

Each record names one item (`{"batchId", "customId"}`); the item runs through flows/batches.py
exactly as the local in-process worker runs it. The records of one invocation run concurrently
on one event loop and share the environment's single database connection (statements take
turns; the upstream calls overlap). An item that asks to be retried (rate limited, database or
upstream away) or that could not run at all is reported in `batchItemFailures`, so SQS delivers
that message again after the visibility timeout and the others are deleted; after the redrive
policy's count a message goes to the dead-letter queue. A record that names no item is logged
and dropped: delivering it again would never make it one.

Database connections: one per execution environment, so the event source mapping's
`MaximumConcurrency` (the `BatchWorkerConcurrency` parameter) is also the most connections the
worker ever holds, whatever the queue's depth.

No web framework is imported: the worker's cold start pays only for the flows it runs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from .batch_queue import read_message
from .logs import bound_request_id, configure_logging
from .services import Services
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Worker:
    loop: asyncio.AbstractEventLoop
    services: Services


_worker: Worker | None = None


def worker() -> Worker:
    """This execution environment's loop and services, made by its first invocation."""
    global _worker
    if _worker is None:
        settings = Settings.from_env()
        configure_logging(settings)
        _worker = Worker(asyncio.new_event_loop(), Services.from_settings(settings))
    return _worker


async def run_record(svc: Services, record: dict[str, Any]) -> bool:
    """Run one record's item; False when its message should come back."""
    from .flows.batches import run_item

    try:
        batch_id, custom_id = read_message(str(record.get("body", "")))
    except ValueError:
        log.error("dropping a batch queue message that names no item (message %s)", record.get("messageId"))
        return True
    try:
        return await run_item(svc, batch_id, custom_id) is None
    except Exception:
        log.warning("batch item %s of %s could not run; it is delivered again", custom_id, batch_id, exc_info=True)
        return False


async def run(svc: Services, records: list[dict[str, Any]]) -> dict[str, Any]:
    done = await asyncio.gather(*(run_record(svc, r) for r in records))
    failures = [{"itemIdentifier": r.get("messageId", "")} for r, ok in zip(records, done, strict=True) if not ok]
    return {"batchItemFailures": failures}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for the SQS event source (ReportBatchItemFailures)."""
    w = worker()
    with bound_request_id(getattr(context, "aws_request_id", None)):
        result = w.loop.run_until_complete(run(w.services, list(event.get("Records") or [])))
    if result["batchItemFailures"]:
        log.info("batch items to deliver again: %d", len(result["batchItemFailures"]))
    return result
