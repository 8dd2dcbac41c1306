"""Batch items from the batch queue (SQS event source, partial batch responses): a plain handler
with no web framework, so a worker's cold start pays only for the flows it runs."""

from aigateway.batch_worker import handler

__all__ = ["handler"]
