"""Enabled configurations, cached per process for a few seconds.

Every generation request needs "is this model enabled, and with which system prompt";
reading it from PostgreSQL each time would add a round trip to the hot path. A few seconds
of staleness is the price: a disabled model stops being served within `config_cache_ttl_s`
everywhere, and at once in the process that disabled it.

A refresh that fails (the database is down or hung) keeps serving the configurations last
read, and tries again only after `RETRY_AFTER_FAILURE_S`, so an outage costs one caller a
database deadline, not every caller. With nothing read yet there is nothing to serve: the
failure (a 503) goes to the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .db import Database
from .errors import GatewayError
from .store import configs as store
from .store.configs import Config

log = logging.getLogger(__name__)
RETRY_AFTER_FAILURE_S = 2.0


class ConfigCache:
    def __init__(self, db: Database, ttl_s: float) -> None:
        self._db = db
        self._ttl = ttl_s
        self._by_model: dict[str, Config] = {}
        self._loaded = False
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
            try:
                rows = await store.active(self._db)
            except GatewayError:
                if not self._loaded:
                    raise
                log.warning("configuration refresh failed; serving the last configurations read")
                self._expires = time.monotonic() + max(self._ttl, RETRY_AFTER_FAILURE_S)
                return
            self._by_model = {c.model_id: c for c in rows}
            self._loaded = True
            self._expires = time.monotonic() + self._ttl

    def invalidate(self) -> None:
        self._expires = 0.0
