"""Hourly usage rollup run by EventBridge Scheduler: a plain handler with no web framework, so the
scheduled cold start does not pay for FastAPI/Mangum imports."""

from aigateway.rollup import handler

__all__ = ["handler"]
