"""What the admin set for limits and quotas, as the hot path reads it, and its per-process cache.

The settings and per-user overrides are JSON in `ai.limit_settings` / `ai.limit_overrides`
(validated by api/limits.py); this module turns them into typed rules. `limits.py` applies them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .store import limits as store

if TYPE_CHECKING:
    from .services import Services

RULE_KEYS = ("requestsPerMinute", "burst", "tokensPerDay", "tokensPerMonth", "spendPerMonthUsd")


@dataclass(frozen=True)
class Rule:
    """One scope's limits (a user, or the project as a whole); None = unlimited."""

    requests_per_minute: int | None = None
    burst: int = 0
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None
    spend_per_month_usd: float | None = None

    @property
    def window_max(self) -> int | None:
        """Calls one minute window admits."""
        return None if self.requests_per_minute is None else self.requests_per_minute + self.burst

    @property
    def unlimited(self) -> bool:
        return (
            self.requests_per_minute is None
            and self.tokens_per_day is None
            and self.tokens_per_month is None
            and self.spend_per_month_usd is None
        )

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Rule:
        d = d or {}
        spend = d.get("spendPerMonthUsd")
        return cls(
            requests_per_minute=d.get("requestsPerMinute"),
            burst=int(d.get("burst") or 0),
            tokens_per_day=d.get("tokensPerDay"),
            tokens_per_month=d.get("tokensPerMonth"),
            spend_per_month_usd=None if spend is None else float(spend),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "requestsPerMinute": self.requests_per_minute,
            "burst": self.burst,
            "tokensPerDay": self.tokens_per_day,
            "tokensPerMonth": self.tokens_per_month,
            "spendPerMonthUsd": self.spend_per_month_usd,
        }

    def merged(self, override: dict[str, Any] | None) -> Rule:
        """This rule with the keys an override sets replaced (null in an override = unlimited)."""
        if not override:
            return self
        base = self.to_json()
        base.update({k: v for k, v in override.items() if k in RULE_KEYS})
        return Rule.from_json(base)


@dataclass(frozen=True)
class LimitsConfig:
    """Everything the admin set, as the hot path reads it."""

    per_user: Rule = field(default_factory=Rule)
    per_project: Rule = field(default_factory=Rule)
    exempt_admins: bool = True
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, body: dict[str, Any] | None, overrides: dict[str, dict[str, Any]] | None = None) -> LimitsConfig:
        body = body or {}
        return cls(
            per_user=Rule.from_json(body.get("perUser")),
            per_project=Rule.from_json(body.get("perProject")),
            exempt_admins=bool(body.get("exemptAdmins", True)),
            overrides=dict(overrides or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "perUser": self.per_user.to_json(),
            "perProject": self.per_project.to_json(),
            "exemptAdmins": self.exempt_admins,
        }

    @property
    def configured(self) -> bool:
        """False when nothing anywhere is limited: `admit` then returns without any I/O."""
        return not (self.per_user.unlimited and self.per_project.unlimited) or any(
            not Rule.from_json(o).unlimited for o in self.overrides.values()
        )

    def for_user(self, user_id: str | None) -> Rule:
        return self.per_user.merged(self.overrides.get(user_id) if user_id is not None else None)


class LimitsCache:
    """The settings and overrides, reloaded at most every `ttl_s` (like config_cache.py)."""

    def __init__(self, ttl_s: float) -> None:
        self._ttl = ttl_s
        self._value = LimitsConfig()
        self._expires = 0.0
        self._lock: asyncio.Lock | None = None

    async def get(self, svc: Services) -> LimitsConfig:
        if time.monotonic() >= self._expires:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:
                if time.monotonic() >= self._expires:
                    body, overrides = await store.load(svc.db)
                    self._value = LimitsConfig.from_json(body, overrides)
                    self._expires = time.monotonic() + self._ttl
        return self._value

    def invalidate(self) -> None:
        self._expires = 0.0
