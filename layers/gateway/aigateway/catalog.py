"""The upstream model catalog as admins see it (`GET /api/ai/models`), cached for a few minutes.

Mapped from OpenRouter's `/models/user` with the active key: modalities narrowed to
text/image/audio in that order, per-token prices turned into USD per million tokens, and
the big four providers first. Cached per key, so a BYOK change shows its own list.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import AI_UPSTREAM_UNAVAILABLE, GatewayError
from .upstream_errors import UpstreamFailure, to_gateway_error

if TYPE_CHECKING:
    from .services import Services

_MODALITIES = ("text", "image", "audio")
_FIRST = ("openai", "anthropic", "google", "amazon")


def _price(value: Any) -> float:
    try:
        return max(0.0, round(float(value) * 1_000_000, 6))
    except (TypeError, ValueError):
        return 0.0


@dataclass(frozen=True)
class TokenPrice:
    """USD per prompt token and per completion token, as the upstream catalog lists them."""

    prompt: float
    completion: float

    @classmethod
    def read(cls, pricing: Any) -> TokenPrice | None:
        if not isinstance(pricing, dict):
            return None
        try:
            prompt, completion = float(pricing.get("prompt") or 0), float(pricing.get("completion") or 0)
        except (TypeError, ValueError):
            return None
        if not (math.isfinite(prompt) and math.isfinite(completion)) or prompt < 0 or completion < 0:
            return None
        return cls(prompt, completion)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.prompt + completion_tokens * self.completion


def map_model(m: dict[str, Any]) -> dict[str, Any]:
    arch: dict[str, Any] = m["architecture"] if isinstance(m.get("architecture"), dict) else {}
    pricing: dict[str, Any] = m["pricing"] if isinstance(m.get("pricing"), dict) else {}
    inputs = arch.get("input_modalities") or []
    outputs = arch.get("output_modalities") or []
    return {
        "id": m.get("id"),
        "modelId": m.get("id"),
        "provider": "openrouter",
        "inputModality": [x for x in _MODALITIES if x in inputs],
        "outputModality": [x for x in _MODALITIES if x in outputs],
        "inputPrice": _price(pricing.get("prompt")),
        "outputPrice": _price(pricing.get("completion")),
        "contextLength": m.get("context_length"),
    }


def sort_key(model: dict[str, Any]) -> tuple[int, str]:
    mid = str(model.get("id") or "")
    author = mid.split("/", 1)[0]
    return (_FIRST.index(author) if author in _FIRST else len(_FIRST), mid)


class ModelCatalog:
    """The upstream catalog cached per key for `ttl_s`, and the context windows it revealed.

    One per process (`Services.catalog`). Context windows are remembered so the chat flow can
    refuse a prompt that cannot fit without a catalog fetch on the hot path.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lists: dict[str, tuple[float, list[dict[str, Any]]]] = {}  # key slot -> (expires, models)
        self._windows: dict[str, tuple[float, int]] = {}  # model id -> (expires, context length)
        self._prices: dict[str, tuple[float, TokenPrice]] = {}  # model id -> (expires, USD per token)

    async def raw_models(self, svc: Services) -> tuple[str | None, list[dict[str, Any]]]:
        """(key source, upstream model records); no key anywhere → (None, [])."""
        resolved = await svc.keys.resolve_optional()
        if resolved is None:
            return None, []
        # Keyed by the key's fingerprint: a replaced BYOK key must not see the old key's catalog.
        slot = resolved.source + ":" + hashlib.sha256(resolved.key.encode()).hexdigest()[:16]
        hit = self._lists.get(slot)
        if hit and time.monotonic() < hit[0]:
            return resolved.source, hit[1]
        try:
            models = await svc.upstream.list_models(resolved.key)
        except UpstreamFailure as failure:
            err = to_gateway_error(failure, resolved.source)
            if err.code == AI_UPSTREAM_UNAVAILABLE or failure.status >= 500:
                raise GatewayError(
                    AI_UPSTREAM_UNAVAILABLE, 502, f"Failed to fetch models: {failure.message}", err.next_actions
                ) from None
            raise err from None
        expires = time.monotonic() + self.ttl_s
        self._lists[slot] = (expires, models)
        for m in models:
            window = m.get("context_length")
            if isinstance(m.get("id"), str) and isinstance(window, int | float):
                self._windows[m["id"]] = (expires, int(window))
            price = TokenPrice.read(m.get("pricing"))
            if isinstance(m.get("id"), str) and price is not None:
                self._prices[m["id"]] = (expires, price)
        return resolved.source, models

    async def list_models(self, svc: Services) -> list[dict[str, Any]]:
        _, models = await self.raw_models(svc)
        return sorted((map_model(m) for m in models if m.get("id")), key=sort_key)

    def peek_price(self, model_id: str) -> TokenPrice | None:
        """The model's per-token price if a recent catalog fetch knows it; never does I/O (hot path:
        the quota hold of a call under a spend quota, limits.py)."""
        hit = self._prices.get(model_id) or self._prices.get(model_id.split(":", 1)[0])
        return hit[1] if hit and time.monotonic() < hit[0] else None

    def peek_context_length(self, model_id: str) -> int | None:
        """The model's context window if a recent catalog fetch knows it; never does I/O (hot path)."""
        hit = self._windows.get(model_id) or self._windows.get(model_id.split(":", 1)[0])
        return hit[1] if hit and time.monotonic() < hit[0] else None
