"""Per-configuration content policy: a deny-list of patterns, and OpenRouter's moderation.

Off by default. A configuration's `contentPolicy` is `{"denyPatterns": [regex, ...],
"moderation": bool}`. Deny patterns are matched case-insensitively against the request's
text before anything is sent upstream; a match is refused with 400 CONTENT_BLOCKED and an
audit record naming the configuration and the pattern's index — never the content.

Why the patterns are restricted: they run on every request of a public app, on text an
anonymous caller chooses, with Python's backtracking `re`. A pattern with an unbounded
repeat (`.*foo`, `\\w+x`) is quadratic on adversarial text, nested repeats are exponential,
backreferences worse. So a pattern must have a bounded width (`{m,n}` instead of `*`/`+`),
no nested repeats and no backreferences, and the product of its repeat bounds is capped.
Bounded width also makes chunked scanning exact: each slice is searched with enough of the
following text to judge every match that starts in it, so none is missed or invented. A whole
scan has a time budget; a request too large to check in it is refused (fail closed, never a
bypass by padding).

What is scanned: every piece of text the caller sends (caller_text.py says which and why), each
on its own and all of them joined, after `normalize`: NFKC folds full-width and other
compatibility letters onto the plain ones (`ｆｏｒｂｉｄｄｅｎ` is `forbidden`), and invisible
characters (zero-width space and joiners, word joiner, BOM, soft hyphen, bidi controls,
variation selectors, tag characters) are removed, since a model reads `for\u200bbidden` as
`forbidden`. The admin's patterns see the folded text, so they are written in plain letters.

The scan never runs on the event loop for more than a moment: past `_THREAD_ABOVE_CHARS` it runs
in a worker thread, in slices of `CHUNK_CHARS` (`re` holds the GIL for one whole search, so a
slice is what another request may wait for), and the budget is checked after every pattern.

`moderation: true` asks OpenRouter to moderate (the flows add `upstream_plugins(policy)` to
the upstream body); an upstream moderation refusal (403 with moderation metadata) already
maps to 400 CONTENT_BLOCKED in upstream_errors.py, and `audit_upstream_block` records it.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import time
import unicodedata
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from .errors import CONTENT_BLOCKED, GatewayError
from .schemas import NoNul
from .store import audit

if TYPE_CHECKING:
    from .auth import Principal
    from .services import Services

log = logging.getLogger(__name__)
_parser: Any = importlib.import_module("re._parser")  # the stdlib's own regex parser (no stub)

MAX_PATTERNS = 50
MAX_PATTERN_CHARS = 200
MAX_WIDTH = 1000  # longest text one pattern may match
MAX_REPEAT_COST = 100  # product of the repeat bounds in one pattern
CHUNK_CHARS = 16 * 1024
SCAN_BUDGET_S = 2.0
_THREAD_ABOVE_CHARS = 16 * 1024
_FLAGS = re.IGNORECASE
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff]+"
)


def normalize(text: str) -> str:
    """The text as the deny patterns see it: invisible characters removed, NFKC-folded."""
    if text.isascii():
        return text
    text = _INVISIBLE.sub("", text)
    if not unicodedata.is_normalized("NFKC", text):
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return text


class PolicyError(ValueError):
    """A deny pattern the gateway refuses to run."""


def _cost(items: Any) -> int:
    """Product of repeat bounds over a parsed (sub)pattern; raises PolicyError on unsafe constructs."""
    total = 1
    for op, av in items:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            _lo, hi, body = av
            if hi == _parser.MAXREPEAT:
                raise PolicyError("unbounded repetition (*, + or {n,}) is not allowed; use a bounded {m,n}")
            inner = _cost(body)
            if inner > 1 and hi > 1:
                raise PolicyError("nested repetition is not allowed")
            total *= max(1, hi) * inner
        elif name == "SUBPATTERN":
            total *= _cost(av[3])
        elif name == "BRANCH":
            total *= max(_cost(branch) for branch in av[1])
        elif name in ("ASSERT", "ASSERT_NOT"):
            total *= _cost(av[1])
        elif name == "ATOMIC_GROUP":
            total *= _cost(av)
        elif name.startswith("GROUPREF"):
            raise PolicyError("backreferences are not allowed")
    return total


def check_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled pattern, or PolicyError saying why it cannot be used."""
    if not 1 <= len(pattern) <= MAX_PATTERN_CHARS:
        raise PolicyError(f"a pattern must be 1 to {MAX_PATTERN_CHARS} characters")
    try:
        parsed = _parser.parse(pattern, _FLAGS)
        compiled = re.compile(pattern, _FLAGS)
    except (re.error, RecursionError, OverflowError) as exc:
        raise PolicyError(f"invalid regular expression: {exc}") from None
    if _cost(parsed) > MAX_REPEAT_COST:
        raise PolicyError(f"the product of its repetition bounds is over {MAX_REPEAT_COST}")
    shortest, longest = parsed.getwidth()
    if longest > MAX_WIDTH:
        raise PolicyError(f"it could match more than {MAX_WIDTH} characters")
    if shortest == 0:
        raise PolicyError("it can match empty text, so it would block every request")
    return compiled


DenyPattern = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATTERN_CHARS), NoNul]


class ContentPolicy(BaseModel):
    """The `contentPolicy` of a configuration as the admin routes accept it."""

    model_config = ConfigDict(extra="ignore")
    denyPatterns: list[DenyPattern] = Field(default_factory=list, max_length=MAX_PATTERNS)
    moderation: bool = False

    @field_validator("denyPatterns")
    @classmethod
    def _compilable(cls, patterns: list[str]) -> list[str]:
        for i, p in enumerate(patterns):
            try:
                check_pattern(p)
            except PolicyError as exc:
                raise ValueError(f"pattern {i}: {exc}") from None
        return patterns


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[tuple[re.Pattern[str], ...], int]:
    """Compiled patterns and the widest match, once per distinct deny-list."""
    compiled = tuple(check_pattern(p) for p in patterns)
    width = max((_parser.parse(p, _FLAGS).getwidth()[1] for p in patterns), default=0)
    return compiled, width


class _OverBudget(Exception):
    pass


def first_match(patterns: tuple[str, ...], texts: list[str], budget_s: float = SCAN_BUDGET_S) -> int | None:
    """Index of the first deny pattern found in any text, None if none; _OverBudget if too slow."""
    compiled, width = _compiled(patterns)
    deadline = time.monotonic() + budget_s
    for text in texts:
        for start in range(0, max(1, len(text)), CHUNK_CHARS):
            # A match starting in [start, start + CHUNK_CHARS) is at most `width` long and looks
            # around at most MAX_WIDTH further, so it is judged on its true context; `pos` keeps
            # the text before it visible to \b and lookbehinds. Later starts are the next slice's.
            own_end = start + CHUNK_CHARS
            endpos = min(len(text), own_end + width + MAX_WIDTH)
            for i, rx in enumerate(compiled):
                m = rx.search(text, start, endpos)
                if m is not None and (m.start() < own_end or endpos == len(text)):
                    return i
                if time.monotonic() > deadline:
                    raise _OverBudget
    return None


def scan(patterns: tuple[str, ...], texts: list[str], budget_s: float = SCAN_BUDGET_S) -> int | None:
    """`first_match` over the normalised texts, each alone and all joined (a phrase split over parts)."""
    started = time.monotonic()
    folded = [normalize(t) for t in texts]
    if len(folded) > 1:
        folded.append("".join(folded))
    return first_match(patterns, folded, budget_s - (time.monotonic() - started))


def scans(policy: dict[str, Any] | None) -> bool:
    """Whether the policy has deny patterns (callers skip collecting the texts when it has none)."""
    return bool(policy and policy.get("denyPatterns"))


def upstream_plugins(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Plugins to add to the upstream body: OpenRouter's moderation when the policy asks for it."""
    return [{"id": "moderation"}] if policy and policy.get("moderation") else []


async def _block(
    svc: Services, principal: Principal, ip: str | None, details: dict[str, Any], message: str
) -> GatewayError:
    try:
        await audit.record_now(svc.db, actor=principal.actor, action="CONTENT_BLOCKED", details=details, ip=ip)
    except Exception:  # the call stays blocked even if the audit row cannot be written
        log.exception("writing the CONTENT_BLOCKED audit record failed")
    return GatewayError(
        CONTENT_BLOCKED, 400, message, "Rephrase the request; this deployment's content policy refused it."
    )


async def check_content(
    svc: Services,
    principal: Principal,
    ip: str | None,
    *,
    config_id: str | None,
    policy: dict[str, Any] | None,
    texts: list[str],
) -> None:
    """Raise 400 CONTENT_BLOCKED (after auditing it) when a deny pattern matches; no-op when off."""
    patterns = tuple(p for p in (policy or {}).get("denyPatterns") or () if isinstance(p, str))
    if not patterns or not texts:
        return
    size = sum(len(t) for t in texts)
    try:
        if size > _THREAD_ABOVE_CHARS:
            index = await asyncio.to_thread(scan, patterns, texts)
        else:
            index = scan(patterns, texts)
    except _OverBudget:
        raise await _block(
            svc,
            principal,
            ip,
            {"configId": config_id, "reason": "scan budget exceeded", "chars": size},
            "The request is too large for this deployment's content policy to check.",
        ) from None
    except PolicyError:  # a stored pattern the current rules reject: fail closed, say so in the log
        log.error("configuration %s has a deny pattern that no longer passes the policy checks", config_id)
        raise await _block(
            svc,
            principal,
            ip,
            {"configId": config_id, "reason": "invalid stored pattern"},
            "The request was blocked by this deployment's content policy.",
        ) from None
    if index is not None:
        raise await _block(
            svc,
            principal,
            ip,
            {"configId": config_id, "patternIndex": index},
            "The request was blocked by this deployment's content policy.",
        )


async def audit_upstream_block(
    svc: Services, principal: Principal, ip: str | None, *, config_id: str | None, model: str
) -> None:
    """Audit a refusal by OpenRouter's moderation (the flow calls it on an upstream CONTENT_BLOCKED)."""
    try:
        await audit.record_now(
            svc.db,
            actor=principal.actor,
            action="CONTENT_BLOCKED",
            details={"configId": config_id, "model": model, "source": "moderation"},
            ip=ip,
        )
    except Exception:  # auditing must not change the caller's error
        log.exception("writing the CONTENT_BLOCKED audit record failed")
