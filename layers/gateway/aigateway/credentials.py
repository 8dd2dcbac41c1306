"""The key resolver: which OpenRouter key serves an upstream call (docs/api.md#upstream-key-and-credits).

Order: the BYOK key (KMS- or locally-wrapped in `ai.secrets`) → the cloud-managed key (a
Secrets Manager secret named by OPENROUTER_CLOUD_KEY_SECRET, read with Powertools parameters)
→ OPENROUTER_API_KEY from the environment. The first present source serves.

Caching: each source's value (or its absence) is kept in this process for at most
`key_cache_ttl_s` (≤ 300 s), so the hot path neither queries Postgres nor calls KMS per
request. Setting or removing the BYOK key clears this process's cache at once; other
processes (other Lambda execution environments) see the change when their entry expires,
i.e. within the cache time.

Failure policy: a BYOK key that is stored but cannot be decrypted (KMS disabled, denied,
throttled, moved from another deployment) is a 503 with an actionable message — it never
silently falls through to another source, which would bill someone else. For the cloud
secret, "not found" and "access denied" mean "this deployment has no cloud key": logged as a
warning and treated as absent; throttling and other AWS failures are a 503.

The plaintext key is only ever held in memory: `ResolvedKey.__repr__` masks it and nothing
here logs it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .crypto import SET_AGAIN, KeyWrapper, WrapperError, byok_context, guard_aws_debug_logs, mismatch_error
from .db import Database
from .errors import (
    AI_INVALID_API_KEY,
    AI_NOT_CONFIGURED,
    AI_UPSTREAM_UNAVAILABLE,
    SERVICE_UNAVAILABLE,
    GatewayError,
)
from .openrouter import OpenRouterClient
from .settings import Settings
from .store import audit
from .store import secrets as secrets_store
from .upstream_errors import UpstreamFailure, to_gateway_error

log = logging.getLogger(__name__)
T = TypeVar("T")

Source = Literal["byok", "cloud", "env"]
ORDER: tuple[Source, ...] = ("byok", "cloud", "env")
MAX_CACHE_S = 300.0
SET_ACTION = "SET_BYOK_OPENROUTER_KEY"
REMOVE_ACTION = "REMOVE_BYOK_OPENROUTER_KEY"

# Secrets Manager answers that mean "no cloud key here" rather than "try again later".
_CLOUD_ABSENT = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "AccessDenied", "InvalidRequestException"}
)
_CLOUD_JSON_FIELDS = ("apiKey", "OPENROUTER_API_KEY", "api_key", "key")
_AWS_CODE = re.compile(r"An error occurred \(([A-Za-z0-9_.]+)\)")


def mask(key: str) -> str:
    """First 4 + `****` + last 4 (the `maskedKey` of GET /gateway/config); keys of 8 characters or fewer → `****`."""
    return "****" if len(key) <= 8 else f"{key[:4]}****{key[-4:]}"


@dataclass(frozen=True, repr=False)
class ResolvedKey:
    """An upstream key and the source it came from; printing it shows only the mask."""

    key: str
    source: Source

    def __repr__(self) -> str:
        return f"ResolvedKey(source={self.source!r}, key={mask(self.key)!r})"

    __str__ = __repr__


def not_configured() -> GatewayError:
    return GatewayError(
        AI_NOT_CONFIGURED,
        503,
        "No OpenRouter API key is configured. An administrator must add one before AI features can be used.",
        "Set a BYOK key with POST /api/ai/gateway/config, name a cloud-managed key secret in "
        "OPENROUTER_CLOUD_KEY_SECRET, or set OPENROUTER_API_KEY in the gateway's environment.",
    )


class KeyResolver:
    """Resolves, caches and (for BYOK) stores the OpenRouter key. One per process."""

    def __init__(self, settings: Settings, db: Database, wrapper_factory: Callable[[], KeyWrapper]) -> None:
        self.settings = settings
        self.db = db
        self._wrapper_factory = wrapper_factory  # lazy: functions that never decrypt build no KMS client
        self._ttl = max(0.0, min(MAX_CACHE_S, settings.key_cache_ttl_s))
        self._cache: dict[Source, tuple[float, str | None]] = {}
        self._generation = 0

    # -- resolution ------------------------------------------------------------------------

    async def resolve(self) -> ResolvedKey:
        """The key for the next upstream call; 503 AI_NOT_CONFIGURED when there is none."""
        found = await self.resolve_optional()
        if found is None:
            raise not_configured()
        return found

    async def resolve_optional(self) -> ResolvedKey | None:
        return await self._first(ORDER)

    async def next_after(self, source: str) -> ResolvedKey | None:
        """The first present source below `source` in the order (fallback on exhaustion)."""
        if source not in ORDER:
            return None
        return await self._first(ORDER[ORDER.index(source) + 1 :])

    async def _first(self, sources: tuple[Source, ...]) -> ResolvedKey | None:
        for source in sources:
            key = await self._value(source)
            if key:
                return ResolvedKey(key, source)
        return None

    def invalidate(self) -> None:
        """Forget every cached value; a load already in flight will not repopulate the cache."""
        self._cache.clear()
        self._generation += 1

    async def _value(self, source: Source) -> str | None:
        if source == "env":
            return self.settings.openrouter_api_key or None
        hit = self._cache.get(source)
        if hit is not None and time.monotonic() < hit[0]:
            return hit[1]
        generation = self._generation
        value = await (self._load_byok() if source == "byok" else self._load_cloud())
        if self._ttl > 0 and generation == self._generation:
            self._cache[source] = (time.monotonic() + self._ttl, value)
        return value

    async def _load_byok(self) -> str | None:
        stored = await secrets_store.get_active(self.db, secrets_store.BYOK_OPENROUTER)
        if stored is None:
            return None
        wrapper = self._wrapper_factory()
        if stored.wrapper != wrapper.name:
            raise WrapperError(
                "mismatch",
                f"The stored BYOK key was encrypted by the '{stored.wrapper}' key wrapper, "
                f"but this deployment uses '{wrapper.name}'.",
                SET_AGAIN,
            )
        plaintext = await asyncio.to_thread(wrapper.unwrap, stored.ciphertext, byok_context(self.settings))
        try:
            return plaintext.decode()
        except UnicodeDecodeError:
            raise mismatch_error() from None

    async def _load_cloud(self) -> str | None:
        name = self.settings.openrouter_cloud_key_secret
        if not name:
            return None
        return await asyncio.to_thread(read_cloud_secret, name, int(self._ttl))

    # -- admin -------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        """The body of GET /api/ai/gateway/config: what serves now, read fresh from the database."""
        stored = await secrets_store.get_active(self.db, secrets_store.BYOK_OPENROUTER)
        if stored is not None:
            return {"keySource": "byok", "hasByokKey": True, "maskedKey": stored.masked_value or "****"}
        for source in ("cloud", "env"):
            if await self._value(source):
                return {"keySource": source, "hasByokKey": False}
        return {"keySource": "unconfigured", "hasByokKey": False}

    async def set_byok(self, key: str, *, actor: str, ip: str | None) -> None:
        """Wrap and store `key` (replacing any earlier one), audited in the same transaction."""
        wrapper = self._wrapper_factory()
        context = byok_context(self.settings)
        ciphertext = await asyncio.to_thread(wrapper.wrap, key.encode(), context)
        # Read it back before storing: a key we could not decrypt later must not replace a working one.
        if await asyncio.to_thread(wrapper.unwrap, ciphertext, context) != key.encode():
            raise mismatch_error()
        async with self.db.transaction() as conn:
            await secrets_store.upsert(
                conn,
                self.db,
                secrets_store.BYOK_OPENROUTER,
                ciphertext=ciphertext,
                wrapper=wrapper.name,
                masked=mask(key),
            )
            await audit.record(conn, self.db, actor=actor, action=SET_ACTION, details={"keySource": "byok"}, ip=ip)
        self.invalidate()
        log.info("BYOK OpenRouter key set (wrapper=%s)", wrapper.name)

    async def remove_byok(self, *, actor: str, ip: str | None) -> bool:
        """Soft-deactivate the BYOK key; False (nothing written) when none is active."""
        async with self.db.transaction() as conn:
            if not await secrets_store.deactivate(conn, self.db, secrets_store.BYOK_OPENROUTER):
                return False
            await audit.record(conn, self.db, actor=actor, action=REMOVE_ACTION, details={"keySource": "byok"}, ip=ip)
        self.invalidate()
        log.info("BYOK OpenRouter key removed")
        return True


# -- the cloud-managed key ----------------------------------------------------------------------


def read_cloud_secret(name: str, max_age_s: int) -> str | None:
    """The cloud-managed key from Secrets Manager (Powertools caches it `max_age_s`); blocking."""
    from aws_lambda_powertools.utilities import parameters

    guard_aws_debug_logs()
    try:
        value = parameters.get_secret(name, max_age=max_age_s)
    except Exception as exc:  # Powertools wraps every SDK failure in GetParameterError; classify by code
        code = aws_error_code(exc)
        if code in _CLOUD_ABSENT:
            log.warning("cloud-managed OpenRouter key secret is not readable (%s); treating it as absent", code)
            return None
        log.warning("reading the cloud-managed OpenRouter key failed: %s", code)
        raise GatewayError(
            SERVICE_UNAVAILABLE,
            503,
            f"Could not read the cloud-managed OpenRouter key from AWS Secrets Manager ({code}).",
            "Retry in a few seconds; if it persists, check the function's access to Secrets Manager "
            "(network path and secretsmanager:GetSecretValue).",
        ) from None
    return parse_cloud_secret(value)


def aws_error_code(exc: BaseException) -> str:
    """The AWS error code behind `exc` (Powertools re-raises, so look at the context too)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if code:
                return str(code)
        found = _AWS_CODE.search(str(seen))
        if found:
            return found.group(1)
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


def parse_cloud_secret(value: object) -> str | None:
    """SecretString as the raw key, or JSON `{"apiKey": ...}` / `{"OPENROUTER_API_KEY": ...}`."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if isinstance(text, str):
        text = text.strip()
        if text.startswith("{"):
            try:
                text = json.loads(text)
            except ValueError:
                log.warning("cloud-managed OpenRouter key secret is malformed JSON; treating it as absent")
                return None
    if isinstance(text, dict):
        for field in _CLOUD_JSON_FIELDS:
            candidate = text.get(field)
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()
        log.warning("cloud-managed OpenRouter key secret has none of the fields %s", ", ".join(_CLOUD_JSON_FIELDS))
        return None
    if isinstance(text, str) and text:
        return text
    log.warning("cloud-managed OpenRouter key secret is empty; treating it as absent")
    return None


# -- upstream calls -----------------------------------------------------------------------------


async def with_key(
    resolver: KeyResolver, settings: Settings, call: Callable[[ResolvedKey], Awaitable[T]]
) -> tuple[T, ResolvedKey]:
    """Run `call` with the resolved key; map its UpstreamFailure to the caller's GatewayError.

    With BYOK_FALLBACK_ON_EXHAUSTION on, a BYOK key refused for credit (402) or limits (429 —
    already retried by the client, so persistent) gets one more try with the next source; the
    returned key says which source served, for the usage record. A refused BYOK key (401/403)
    never falls back: the admin must learn that key is invalid.
    """
    key = await resolver.resolve()
    try:
        return await call(key), key
    except UpstreamFailure as failure:
        if settings.fallback_on_exhaustion and key.source == "byok" and failure.status in (402, 429):
            nxt = await resolver.next_after(key.source)
            if nxt is not None:
                log.warning(
                    "BYOK key refused upstream (%d); this request falls back to the %s key",
                    failure.status,
                    nxt.source,
                )
                try:
                    return await call(nxt), nxt
                except UpstreamFailure as second:
                    raise to_gateway_error(second, nxt.source) from None
        raise to_gateway_error(failure, key.source) from None


async def validate_new_key(upstream: OpenRouterClient, key: str) -> None:
    """Ask OpenRouter's `/key` whether `key` is accepted before storing it (POST /gateway/config)."""
    try:
        await upstream.check_key(key)
    except UpstreamFailure as failure:
        if failure.status in (401, 403):
            raise GatewayError(
                AI_INVALID_API_KEY, 400, "Invalid OpenRouter API key. Please check the key and try again."
            ) from None
        log.warning("validating a new OpenRouter key failed: upstream status %d", failure.status)
        raise GatewayError(
            AI_UPSTREAM_UNAVAILABLE,
            502,
            "Could not reach OpenRouter to validate the key. Please try again later.",
        ) from None


async def credits(resolver: KeyResolver, upstream: OpenRouterClient) -> dict[str, float | None]:
    """`{"usage", "limit", "remaining", "credits"}` of the active key (GET /api/ai/credits).

    `usage`, `limit` and `remaining` come from OpenRouter's `/key`. `credits` is what can still be
    spent, the field the InsForge Python SDK reads: the key's `remaining` when it has a limit, else
    the account's balance from `/credits` (total bought less total used), which OpenRouter answers
    only for keys allowed to read it; otherwise null, never a failure of the whole answer.
    """
    key = await resolver.resolve()
    try:
        data = await upstream.check_key(key.key)
    except UpstreamFailure as failure:
        if failure.status in (401, 403, 429):
            raise to_gateway_error(failure, key.source) from None
        raise GatewayError(
            AI_UPSTREAM_UNAVAILABLE, 502, f"Failed to fetch credits: {failure.message}", "Retry in a moment."
        ) from None
    usage = _number(data.get("usage")) or 0.0
    limit = _number(data.get("limit"))
    remaining = None if limit is None else round(limit - usage, 10)
    balance = remaining if remaining is not None else await _account_balance(upstream, key.key)
    return {"usage": usage, "limit": limit, "remaining": remaining, "credits": balance}


async def _account_balance(upstream: OpenRouterClient, key: str) -> float | None:
    try:
        body = await upstream.get_json("/credits", key, timeout_s=upstream.settings.key_validation_timeout_s)
    except UpstreamFailure:
        return None
    data = body.get("data")
    total = _number(data.get("total_credits")) if isinstance(data, dict) else None
    used = _number(data.get("total_usage")) if isinstance(data, dict) else None
    return None if total is None or used is None else round(total - used, 10)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
