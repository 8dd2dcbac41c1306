"""What every generation flow shares: the call's context, model gating, and the `Answer` it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..cache import CacheControl
from ..errors import AI_INVALID_MODEL, GatewayError
from ..store.configs import Config

if TYPE_CHECKING:
    from ..auth import Principal
    from ..limits import Admission
    from ..services import Services
    from ..store.usage import UsageRecord

R = TypeVar("R")


@dataclass
class CallContext:
    """Who asked for what, carried from the route through the flow to the usage row."""

    principal: Principal
    ip: str | None
    request_id: str
    started: float
    upstream_headers: dict[str, str] = field(default_factory=dict)
    cache_control: CacheControl = field(default_factory=CacheControl)  # the caller's Cache-Control


@dataclass
class Answer(Generic[R]):
    """A finished call, before anyone shapes it for a dialect.

    `result` is what the upstream answered (chat, embeddings) or what the flow assembled from
    several upstream answers (images); `model` is the model the caller asked for. `usage` is the
    row that bills the call and `admission` the limits decision it was counted under: whoever
    answers the caller settles both (`flows.metering.settle`).
    """

    result: R
    model: str
    request_id: str
    usage: UsageRecord
    admission: Admission
    cache_status: str | None = None  # HIT / MISS / BYPASS when the model's cache is on (cache.py)


async def gate(svc: Services, model_id: str) -> Config:
    """The active configuration for `model_id`, or 400 AI_INVALID_MODEL: callers use only enabled models."""
    config = await svc.configs.get(model_id)
    if config is None:
        raise GatewayError(
            AI_INVALID_MODEL,
            400,
            f"Model {model_id} is not enabled. Please contact your administrator to enable this model.",
            "Use a model from the enabled configurations, or ask an admin to enable this one.",
            param="model",
        )
    return config


def content_text(content: Any, sep: str = "") -> str:
    """The text of a message's content: the string itself, or its text parts joined by `sep`."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return sep.join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
