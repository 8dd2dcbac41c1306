"""The per-process objects every request uses, built once and shared.

A Lambda execution environment builds one `Services` at init and reuses it across
invocations; the local server builds one per app; tests build one per server they start.
Every per-process object is a typed field here, built on first use (`cached_property`), so
each function pays at cold start only for what it touches, and a reader finds every shared
cache in one place: the configuration and limits caches, the model catalog, the upstream
client, the key resolver, the usage recorder (which also charges quotas), the image store.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, partial
from typing import TYPE_CHECKING

from .auth import Authenticator, TokenRules
from .config_cache import ConfigCache
from .db import Database
from .secrets import conninfo, resolve
from .settings import Settings

if TYPE_CHECKING:  # imported lazily at run time: they cost cold-start time
    from .batch_files import FileStore
    from .batch_queue import BatchQueue
    from .cache import HotEntries
    from .catalog import ModelCatalog
    from .credentials import KeyResolver
    from .crypto import KeyWrapper
    from .image_store import ImageStore
    from .limits import LimitsCache
    from .openrouter import OpenRouterClient
    from .usage_spool import UsageRecorder


@dataclass
class Services:
    settings: Settings
    db: Database
    # When expired limit-window rows were last swept (monotonic seconds; limits.sweep_now_and_then).
    limits_swept_at: float | None = None
    # When this process last kept the cache under its total size cap (flows/response_cache.py).
    cache_evicted_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        fresh_secret = settings.db_secret_arn and not settings.database_url
        db = Database(
            lambda: conninfo(settings),
            schema=settings.db_schema,
            pool_size=settings.db_pool_size,
            connect_timeout_s=settings.db_connect_timeout_s,
            op_timeout_s=settings.db_op_timeout_s,
            # A refused password: read the DB secret again (it may have been rotated), once.
            reauth=partial(conninfo, settings, fresh=True) if fresh_secret else None,
            # Server-side prepared statements halve the hot path's database time (db.py) but pin
            # connections behind RDS Proxy, so only a server outside AWS (local, tests) uses them.
            prepare=not settings.on_aws,
        )
        return cls(settings=settings, db=db)

    @cached_property
    def auth(self) -> Authenticator:
        s = self.settings
        secret = resolve(s.jwt_secret, s.jwt_secret_arn)
        if not secret:
            raise RuntimeError("JWT_SECRET (or JWT_SECRET_ARN) must be set")
        admin_key = resolve(s.access_api_key, s.access_api_key_secret_arn)
        return Authenticator(secret, admin_key, allow_anon=s.allow_anon, rules=TokenRules.from_settings(s))

    @cached_property
    def configs(self) -> ConfigCache:
        return ConfigCache(self.db, self.settings.config_cache_ttl_s)

    @cached_property
    def upstream(self) -> OpenRouterClient:
        from .openrouter import OpenRouterClient

        return OpenRouterClient(self.settings)

    @cached_property
    def key_wrapper(self) -> KeyWrapper:
        from .crypto import key_wrapper_for

        return key_wrapper_for(self.settings)

    @cached_property
    def keys(self) -> KeyResolver:
        from .credentials import KeyResolver

        return KeyResolver(self.settings, self.db, lambda: self.key_wrapper)

    @cached_property
    def usage(self) -> UsageRecorder:
        from .usage_spool import UsageRecorder

        return UsageRecorder(self.settings, self.db)

    @cached_property
    def hot_cache(self) -> HotEntries:
        """Response and embeddings cache entries this process used lately (cache.HotEntries)."""
        from .cache import HotEntries

        return HotEntries(self.settings.config_cache_ttl_s)

    @cached_property
    def limits(self) -> LimitsCache:
        from .limits import LimitsCache

        return LimitsCache(self.settings.config_cache_ttl_s)

    @cached_property
    def catalog(self) -> ModelCatalog:
        from .catalog import ModelCatalog

        return ModelCatalog(self.settings.models_cache_ttl_s)

    @cached_property
    def images(self) -> ImageStore:
        from .image_store import image_store

        return image_store(self.settings)

    @cached_property
    def batch_queue(self) -> BatchQueue:
        """Where batch items wait: SQS on AWS, else workers on this process's event loop."""
        from .batch_queue import LocalBatchQueue, SqsBatchQueue

        if self.settings.batch_queue_url:
            return SqsBatchQueue(self.settings.batch_queue_url)
        from .flows.batches import run_item

        return LocalBatchQueue(self.settings.batch_local_concurrency, lambda b, c: run_item(self, b, c))

    @cached_property
    def batch_files(self) -> FileStore:
        from .batch_files import file_store

        return file_store(self.settings)

    async def close_clients(self) -> None:
        """Close what these services opened beside the database (queue workers, the usage writer,
        the upstream session): for a caller that lent its own database connection."""
        if "batch_queue" in self.__dict__:
            await self.batch_queue.aclose()
        if "usage" in self.__dict__:
            await self.usage.aclose()
        if "upstream" in self.__dict__:
            await self.upstream.aclose()

    async def aclose(self) -> None:
        await self.close_clients()
        await self.db.close()
