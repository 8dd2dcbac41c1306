"""The batch worker Lambda: SQS messages naming batch items in, a partial batch response out.

Each record names one item (`{"batchId", "customId"}`); the item runs through flows/batches.py
exactly as the local in-process worker runs it. The records of one invocation run concurrently
on one event loop and share the environment's single database connection (statements take
turns; the upstream calls overlap). An item that asks to be retried (rate limited, database or
upstream away) or that could not run at all is reported in `batchItemFailures`, so SQS delivers
that message again and the others are deleted; after the redrive policy's count a message goes to
the dead-letter queue. An item that said when to come back (a Retry-After) has its message's
visibility set to that (`ChangeMessageVisibility`) instead of waiting out the queue's timeout. A
record that names no item is logged and dropped: delivering it again would never make it one.

Database connections: one per execution environment, so the event source mapping's
`MaximumConcurrency` (the `BatchWorkerConcurrency` parameter) is also the most connections the
worker ever holds, whatever the queue's depth.

No web framework is imported: the worker's cold start pays only for the flows it runs.
"""

from __future__ import annotations

import asyncio
import logging
import math
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
        again = await run_item(svc, batch_id, custom_id)
    except Exception:
        log.warning("batch item %s of %s could not run; it is delivered again", custom_id, batch_id, exc_info=True)
        return False
    if again is not None:
        await asyncio.to_thread(come_back_in, record, again)
    return again is None


def queue_url(arn: str) -> str:
    """The URL of the queue an event source ARN names (arn:aws:sqs:<region>:<account>:<name>)."""
    _, partition, _, region, account, name = arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def come_back_in(record: dict[str, Any], seconds: float) -> None:
    """Make the record's message visible again in `seconds`; on failure it waits the queue's timeout."""
    try:
        sqs = _sqs()
        sqs.change_message_visibility(
            QueueUrl=queue_url(str(record["eventSourceARN"])),
            ReceiptHandle=record["receiptHandle"],
            VisibilityTimeout=max(0, min(43_200, math.ceil(seconds))),
        )
    except Exception as exc:
        log.info("could not shorten a batch message's visibility (%s)", type(exc).__name__)


_client: Any = None


def _sqs() -> Any:
    global _client
    if _client is None:
        import boto3
        from botocore.config import Config

        _client = boto3.client("sqs", config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}))
    return _client


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
