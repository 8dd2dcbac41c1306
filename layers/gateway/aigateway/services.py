"""The per-process objects every request uses, built once and shared.

A Lambda execution environment builds one `Services` at init and reuses it across
invocations; the local server builds one per app; tests build one per server they start.
Pieces a function may not need (the upstream client, the key resolver, S3) are created on
first use so each function pays at cold start only for what it imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .auth import Authenticator
from .config_cache import ConfigCache
from .db import Database
from .secrets import conninfo, resolve
from .settings import Settings

if TYPE_CHECKING:  # imported lazily at run time: they cost cold-start time
    from .credentials import KeyResolver
    from .crypto import KeyWrapper
    from .openrouter import OpenRouterClient
    from .usage_spool import UsageRecorder


@dataclass
class Services:
    settings: Settings
    db: Database
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        db = Database(
            lambda: conninfo(settings),
            schema=settings.db_schema,
            pool_size=settings.db_pool_size,
            connect_timeout_s=settings.db_connect_timeout_s,
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
        return Authenticator(secret, admin_key, allow_anon=s.allow_anon)

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

    async def aclose(self) -> None:
        if "upstream" in self.__dict__:
            await self.upstream.aclose()
        await self.db.close()
