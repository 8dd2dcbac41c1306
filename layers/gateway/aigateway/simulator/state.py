"""Per-app mutable state: the request log behind ``/_sim/requests`` and the failure counters.

Everything runs on the server's one event loop, so plain dicts and a bounded deque are enough (no
locks). Log entries are dicts that the handlers keep updating while a stream runs (``usage``,
``chunks_sent``, ``cancelled``), so a test reads the final state once the response is over.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .controls import Controls

__all__ = ["LOG_BODY_LIMIT", "LOG_SIZE", "SimState"]

LOG_SIZE = 200
LOG_BODY_LIMIT = 16 * 1024 * 1024  # larger bodies are logged as {"_omitted_bytes": N}


class SimState:
    """Request log (last :data:`LOG_SIZE` requests), ``x-sim-fail-times`` counters, reported cost."""

    def __init__(self) -> None:
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self.fail_counts: dict[str, int] = {}
        self.total_cost = 0.0
        self.received = 0

    def record(
        self, method: str, path: str, query: bytes, raw_headers: list[tuple[bytes, bytes]], body: Any
    ) -> dict[str, Any]:
        """Append and return the log entry of a request (headers lower-cased, as ASGI gives them)."""
        self.received += 1
        entry: dict[str, Any] = {
            "seq": self.received,
            "time": time.time(),
            "method": method,
            "path": path,
            "query": query.decode("latin-1"),
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in raw_headers},
            "body": body,
            "status": 200,
            "stream": False,
            "model": None,
            "usage": None,
            "cancelled": False,
        }
        self.log.append(entry)
        return entry

    def report_usage(self, entry: dict[str, Any], usage: dict[str, Any]) -> None:
        """Remember the usage actually sent to the client (log entry and running cost)."""
        entry["usage"] = usage
        self.total_cost += float(usage.get("cost") or 0.0)

    def should_fail(self, controls: Controls) -> bool:
        """Whether ``x-sim-fail-status`` applies to this request (``x-sim-fail-times`` counting)."""
        if controls.fail_status is None:
            return False
        if controls.fail_times is None:
            return True
        count = self.fail_counts.get(controls.request_key, 0)
        if count >= controls.fail_times:
            return False
        self.fail_counts[controls.request_key] = count + 1
        return True

    def reset(self) -> None:
        """Forget the log, the failure counters and the reported cost."""
        self.log.clear()
        self.fail_counts.clear()
        self.total_cost = 0.0
        self.received = 0
