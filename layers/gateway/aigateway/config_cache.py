"""Enabled configurations, cached per process for a few seconds.

Every generation request needs "is this model enabled, and with which system prompt";
reading it from PostgreSQL each time would add a round trip to the hot path. A few seconds
of staleness is the price: a disabled model stops being served within `config_cache_ttl_s`
everywhere, and at once in the process that disabled it.
"""

from __future__ import annotations

import asyncio
import time

from .db import Database
from .store import configs as store
from .store.configs import Config


class ConfigCache:
    def __init__(self, db: Database, ttl_s: float) -> None:
        self._db = db
        self._ttl = ttl_s
        self._by_model: dict[str, Config] = {}
        self._expires = 0.0
        self._lock: asyncio.Lock | None = None

    async def get(self, model_id: str) -> Config | None:
        if time.monotonic() >= self._expires:
            await self._refresh()
        return self._by_model.get(model_id)

    async def _refresh(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if time.monotonic() < self._expires:
                return  # another request refreshed while we waited
            rows = await store.active(self._db)
            self._by_model = {c.model_id: c for c in rows}
            self._expires = time.monotonic() + self._ttl

    def invalidate(self) -> None:
        self._expires = 0.0
