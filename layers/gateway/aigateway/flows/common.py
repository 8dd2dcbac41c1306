"""Steps every generation flow shares: gate the model, shape usage, record what a call cost."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..db import GroupCommit
from ..errors import AI_INVALID_MODEL, GatewayError
from ..limits import Admission
from ..store.configs import Config
from ..store.usage import UsageRecord

if TYPE_CHECKING:
    from ..auth import Principal
    from ..services import Services

log = logging.getLogger(__name__)
_CHARGES_KEY = "charges"


@dataclass
class CallContext:
    """Who asked for what, carried from the route through the flow to the usage row."""

    principal: Principal
    ip: str | None
    request_id: str
    started: float
    upstream_headers: dict[str, str] = field(default_factory=dict)


async def gate(svc: Services, model_id: str) -> Config:
    """The active configuration for `model_id`, or 400 AI_INVALID_MODEL (spec §4.3 step 3)."""
    config = await svc.configs.get(model_id)
    if config is None:
        raise GatewayError(
            AI_INVALID_MODEL,
            400,
            f"Model {model_id} is not enabled. Please contact your administrator to enable this model.",
            "Use a model from the enabled configurations, or ask an admin to enable this one.",
        )
    return config


def content_text(content: Any, sep: str = "") -> str:
    """The text of a message's content: the string itself, or its text parts joined by `sep`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return sep.join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def camel_usage(usage: Any) -> dict[str, int] | None:
    """OpenRouter's snake_case usage → the SDK's `{promptTokens, completionTokens, totalTokens}`."""
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    total = int(usage.get("total_tokens") or prompt + completion)
    return {"promptTokens": prompt, "completionTokens": completion, "totalTokens": total}


def cost_of(usage: Any) -> float | None:
    if isinstance(usage, dict) and isinstance(usage.get("cost"), int | float):
        return float(usage["cost"])
    return None


async def settle(svc: Services, admission: Admission | None, record: UsageRecord) -> None:
    """After the answer: write the usage row (or spool it) and count it against quotas.

    Runs after the response is sent (a background task awaited inside the request, so a
    Lambda does not freeze before it finishes). Never raises.
    """
    await svc.usage.record(record)
    if admission is not None:
        tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
        try:
            await _charges(svc).submit((admission.subject, tokens, record.cost_usd))
        except Exception:
            log.exception("charging usage against limits failed")


Charge = tuple[str, int, float | None]  # (subject, tokens, cost in USD)


def _charges(svc: Services) -> GroupCommit[Charge]:
    """The process's charge writer: answers that finish together are charged in one statement
    per subject (their tokens and spend summed, which adds up to the same counters), instead
    of one round trip each (db.GroupCommit; a lone answer is charged at once)."""
    found = svc.extras.get(_CHARGES_KEY)
    if not isinstance(found, GroupCommit):

        async def write(items: list[Charge]) -> None:
            from .. import limits

            totals: dict[str, tuple[int, float | None]] = {}
            for subject, tokens, cost in items:
                t, c = totals.get(subject, (0, None))
                totals[subject] = (t + tokens, c if cost is None else (c or 0.0) + cost)
            for subject, (tokens, cost) in totals.items():
                await limits.charge(svc, Admission(subject=subject), tokens=tokens, cost_usd=cost)

        found = svc.extras[_CHARGES_KEY] = GroupCommit(write)
    return found
