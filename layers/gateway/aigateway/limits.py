"""Rate limits and quotas: `admit` before the upstream call; its use is charged when it is settled.

Why PostgreSQL: a gateway open to anon users of a public app is a credit card on the
internet, and on Lambda there are as many processes as concurrent requests, so a limit kept
in memory would multiply with the instance count. The counters live in the database and each
call costs one statement (store/limits.py); what the admin configured is cached per process
for `config_cache_ttl_s`, so a deployment without limits pays no round trip at all.

Rate limits use fixed one-minute windows (UTC minute boundaries, the database's clock): a
window admits `requestsPerMinute + burst` calls. `burst` is headroom an admin can grant on top
of the steady rate for clients that send in spurts; with fixed windows a client can, at a
window edge, get up to twice the ceiling within one rolling minute — the price of one cheap
upsert per call instead of a sliding log.

Quotas (tokens per UTC day and month, USD spend per UTC month) are reserved at admission: the
admission statement admits a call only while settled use plus the holds of the calls in flight
is under the quota, and in the same statement holds this call's worst case (`Hold`: prompt
estimate + maxTokens, and their price when the model's price is known). Settling the call
(`flows.metering.settle`: its usage row and charge in one statement) replaces the hold with the
actual use; `release` drops it when the
call fails before answering. Whatever the concurrency, a quota is therefore passed by at most
the last admitted call's actual use (as long as calls use no more than they held), and a call
that starts under the quota finishes even when it crosses it (a stream is never cut); the next
call is refused. A hold whose process died stops counting after `quota_hold_ttl_s`.

Who is counted (`Subject`): authenticated users by JWT subject; anon callers by subject plus
client IP (an app's anon key is shared by all its visitors); admin API-key callers as
`key:admin`, exempt unless the settings say `exemptAdmins: false`. Every call is counted
against the project. Keys are typed and hashed (`user:<sha256>`, `anon:<sha256>`), so a user
whose `sub` is "admin" never shares the admin key's counters and no JWT makes a key longer
than an index row allows.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from .errors import QUOTA_EXCEEDED, RATE_LIMITED, GatewayError
from .limit_rules import RULE_KEYS as RULE_KEYS
from .limit_rules import LimitsCache as LimitsCache
from .limit_rules import LimitsConfig as LimitsConfig
from .limit_rules import Rule as Rule
from .store import limits as store
from .timefmt import iso_utc

if TYPE_CHECKING:
    from .auth import Principal
    from .services import Services

log = logging.getLogger(__name__)

_CLEANUP_EVERY_S = 300.0


@dataclass(frozen=True)
class Subject:
    """Whom a call's limits and quotas count: `key` is the fixed-size database key, `label` a
    bounded readable form for audit details."""

    key: str
    label: str


ADMIN = Subject("key:admin", "key:admin")
_LABEL_CHARS = 64


def _readable(text: str, limit: int = _LABEL_CHARS) -> str:
    """`text` cut to `limit` characters, unprintable ones (NUL, controls) as "?": safe to store."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _digest(*parts: str) -> str:
    """sha256 of the parts, NUL-separated (an IP address never holds a NUL, and it comes last)."""
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def user_subject(user_id: str) -> Subject:
    """The subject of an authenticated user (also what the admin view of a user reads)."""
    return Subject("user:" + _digest(user_id), "user:" + _readable(user_id))


def identity(principal: Principal, ip: str | None) -> Subject:
    """The rate-limit and quota subject of a caller (see the module docstring)."""
    if principal.via_api_key:
        return ADMIN
    if principal.role != "anon" and principal.user_id is not None:
        return user_subject(principal.user_id)
    sub = principal.user_id or ""
    where = ip or "unknown"
    return Subject("anon:" + _digest(principal.role, sub, where), f"anon:{_readable(sub) or principal.role}:{where}")


@dataclass(frozen=True)
class Hold:
    """The most one call may use: what admission reserves against the quotas until it is settled."""

    tokens: int = 0
    spend_usd: float = 0.0


def hold_for(svc: Services, model: str, prompt_tokens: int, completion_tokens: int) -> Hold:
    """The hold of a call that may use this many tokens: their sum, and their price at the
    model's catalog price when this process knows it (no I/O; unknown = no spend held)."""
    price = svc.catalog.peek_price(model)
    spend = price.cost(prompt_tokens, completion_tokens) if price is not None else 0.0
    return Hold(tokens=prompt_tokens + completion_tokens, spend_usd=spend)


@dataclass
class Admission:
    """An admitted call: the headers for its response, whose counters its settle charges, and its quota hold."""

    headers: dict[str, str] = field(default_factory=dict)
    subject: Subject = ADMIN
    hold_id: int | None = None


def _quota_params(user: Rule, project: Rule) -> dict[str, int | float | None]:
    return {
        "u_day": user.tokens_per_day,
        "u_month": user.tokens_per_month,
        "u_spend": user.spend_per_month_usd,
        "p_day": project.tokens_per_day,
        "p_month": project.tokens_per_month,
        "p_spend": project.spend_per_month_usd,
    }


async def admit(
    svc: Services, principal: Principal, ip: str | None, *, model: str, kind: str, hold: Hold | None = None
) -> Admission:
    """Admit one generation call or raise 429 RATE_LIMITED / 402 QUOTA_EXCEEDED.

    At most one database round trip; none when nothing is configured or the caller is exempt.
    A refusal is audited by that same statement; an admission under a quota holds `hold`.
    """
    config = await svc.limits.get(svc)
    subject = identity(principal, ip)
    admission = Admission(subject=subject)
    if not config.configured or (principal.via_api_key and config.exempt_admins):
        return admission
    user = config.for_user(None if principal.via_api_key else principal.user_id)
    project = config.per_project
    if user.unlimited and project.unlimited:
        return admission
    hold = hold or Hold()
    verdict = await store.admit(
        svc.db,
        subject=subject.key,
        user_rate=user.window_max,
        project_rate=project.window_max,
        quotas=_quota_params(user, project),
        actor=_readable(principal.actor, 256),
        ip=ip,
        details={"model": model, "kind": kind, "subject": subject.label},
        hold_tokens=hold.tokens,
        hold_spend=hold.spend_usd,
        hold_ttl_s=svc.settings.quota_hold_ttl_s,
    )
    admission.headers = rate_headers(verdict, user, project)
    if verdict.refused:
        raise refusal(verdict, user, project, admission.headers)
    admission.hold_id = verdict.hold_id
    return admission


async def release(svc: Services, admission: Admission) -> None:
    """Drop the hold of a call that ended without an answer to bill. Never raises: the hold
    would expire anyway, and the caller is already getting the call's own error."""
    if admission.hold_id is None:
        return
    try:
        await store.release(svc.db, [admission.hold_id])
    except Exception:
        log.exception("releasing a quota hold failed (it expires after quota_hold_ttl_s)")
    admission.hold_id = None


async def sweep_now_and_then(svc: Services) -> None:
    """Every `_CLEANUP_EVERY_S` per process, drop the counters no decision reads any more (expired
    windows, holds and periods: `store.cleanup`). Never raises: the next sweep catches up."""
    now = time.monotonic()
    last = svc.limits_swept_at
    if last is not None and now - last < _CLEANUP_EVERY_S:
        return
    svc.limits_swept_at = now
    try:
        await store.cleanup(svc.db)
    except Exception:
        log.warning("sweeping expired limit counters failed", exc_info=True)


# ---- headers and errors ---------------------------------------------------------------------


def rate_headers(verdict: store.Verdict, user: Rule, project: Rule) -> dict[str, str]:
    """X-RateLimit-* of the binding scope (the one with fewer calls left), empty when none applies."""
    scopes: list[tuple[int, int]] = []  # (ceiling, remaining)
    if user.window_max is not None and verdict.user_hits is not None:
        scopes.append((user.window_max, max(0, user.window_max - verdict.user_hits)))
    if project.window_max is not None and verdict.project_hits is not None:
        scopes.append((project.window_max, max(0, project.window_max - verdict.project_hits)))
    if not scopes:
        return {}
    ceiling, remaining = min(scopes, key=lambda s: s[1])
    reset = verdict.window_start + timedelta(seconds=60)
    return {
        "X-RateLimit-Limit": str(ceiling),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset.timestamp())),
    }


def retry_after_s(verdict: store.Verdict) -> int:
    """Whole seconds until the current window ends (at least 1)."""
    left = (verdict.window_start + timedelta(seconds=60) - verdict.now).total_seconds()
    return max(1, math.ceil(left))


def quota_reset(which: str, now: datetime) -> datetime:
    """When a day or month quota starts over: the next UTC midnight or first of the month."""
    today = now.astimezone(UTC).date()
    if which.endswith("PerDay"):
        nxt = today + timedelta(days=1)
    else:
        nxt = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=UTC)


_QUOTA_WORDS = {
    "tokensPerDay": ("daily token quota", "tokens"),
    "tokensPerMonth": ("monthly token quota", "tokens"),
    "spendPerMonthUsd": ("monthly spend quota", "USD"),
}


def refusal(verdict: store.Verdict, user: Rule, project: Rule, headers: dict[str, str]) -> GatewayError:
    """The 429 or 402 for a refused verdict, saying which limit and when it resets."""
    assert verdict.refused is not None
    scope, _, which = verdict.refused.partition(".")
    rule = user if scope == "user" else project
    owner = "your" if scope == "user" else "this project's"
    if which == "requestsPerMinute":
        wait = retry_after_s(verdict)
        per = "per user" if scope == "user" else "for this project"
        return GatewayError(
            RATE_LIMITED,
            429,
            f"Rate limit exceeded: {rule.window_max} requests per minute {per}. Retry in {wait} seconds.",
            f"Wait {wait} seconds before retrying.",
            headers={**headers, "Retry-After": str(wait)},
        )
    name, unit = _QUOTA_WORDS[which]
    value = {
        "tokensPerDay": rule.tokens_per_day,
        "tokensPerMonth": rule.tokens_per_month,
        "spendPerMonthUsd": rule.spend_per_month_usd,
    }[which]
    resets = iso_utc(quota_reset(which, verdict.now))
    if verdict.held:
        return GatewayError(
            QUOTA_EXCEEDED,
            402,
            f"Quota exceeded: what is left of {owner} {name} ({value} {unit}) is reserved by calls in progress. "
            f"It frees up as they finish, and resets at {resets}.",
            "Retry when your calls in progress have finished, or send fewer at once.",
        )
    return GatewayError(
        QUOTA_EXCEEDED,
        402,
        f"Quota exceeded: {owner} {name} ({value} {unit}) is used up. It resets at {resets}.",
        f"Wait until {resets}, or ask the administrator to raise the quota.",
    )
