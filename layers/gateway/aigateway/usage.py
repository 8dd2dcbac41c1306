"""`Usage`: the one reader of the upstream's `usage` object (tokens and cost of one call).

OpenRouter answers usage in OpenAI's snake_case shape plus a `cost` in USD. Every flow and both
dialects read it through `Usage.read`, so a missing or malformed field means the same thing
everywhere: absent counts are 0, an absent total is prompt + completion, an absent cost is None
(unknown, not free).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True, slots=True)
class Usage:
    prompt: int = 0
    completion: int = 0
    total: int = 0
    cost_usd: float | None = None
    # OpenAI's token breakdowns (cached prompt tokens, reasoning tokens), passed on as given.
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, raw: Any) -> Usage | None:
        """The usage of an upstream answer or chunk; None when it carries none."""
        if not isinstance(raw, dict):
            return None
        prompt, completion = _count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens"))
        cost = raw.get("cost")
        details = {
            k: raw[k] for k in ("prompt_tokens_details", "completion_tokens_details") if isinstance(raw.get(k), dict)
        }
        return cls(
            prompt=prompt,
            completion=completion,
            total=_count(raw.get("total_tokens")) or prompt + completion,
            cost_usd=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
            details=details,
        )

    @classmethod
    def combine(cls, usages: list[Usage]) -> Usage | None:
        """Several calls' usage added up (image requests make one call per image); None if none."""
        if not usages:
            return None
        costs = [u.cost_usd for u in usages if u.cost_usd is not None]
        return cls(
            prompt=sum(u.prompt for u in usages),
            completion=sum(u.completion for u in usages),
            total=sum(u.total for u in usages),
            cost_usd=sum(costs) if costs else None,
        )
