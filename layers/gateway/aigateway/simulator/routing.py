"""Request checks shared by chat and embeddings: key, model id, provider preferences, fallback routing.

Behaviour is chosen by the key and the model id so a test can provoke each error without headers:

* key (``Authorization: Bearer <key>``): missing → 401 "No auth credentials found"; contains
  ``invalid`` or ``revoked`` → 401 "User not found."; contains ``nocredit`` → 402 on
  chat/embeddings; contains ``ratelimited`` → 429 with ``Retry-After`` on chat/embeddings;
  contains ``noaccount`` → 403 on ``/credits`` (the account balance, for provisioning keys only).
* model id: must be ``author/slug[:variant]`` (400 "<id> is not a valid model ID"); a slug
  containing ``nonexistent`` → 404 "No endpoints found for <id>."; a slug containing ``-down`` is
  unavailable (502) — the ``models`` fallbacks are then tried in order and the first available one
  serves (its id is the response ``model``); a prompt longer than a catalogue model's context
  window (``sim/tiny-context``: 64) is a 400 and also falls back.
* ``provider``: unknown keys → 400, like OpenRouter's ``additionalProperties: false`` schema.
"""

from __future__ import annotations

import re
from typing import Any

from .catalog import CONTEXT_LENGTHS, provider_name
from .errors import (
    INSUFFICIENT_CREDITS,
    NO_AUTH,
    USER_NOT_FOUND,
    SimError,
    error_body,
    rate_limited,
    simple_error,
)

__all__ = ["DEFAULT_MODEL", "check_billing", "check_key", "check_model_id", "check_provider", "route_model"]

DEFAULT_MODEL = "openai/gpt-4o-mini"
_MODEL_ID = re.compile(r"[A-Za-z0-9~][A-Za-z0-9._\-]*/[A-Za-z0-9][A-Za-z0-9._\-]*(?::[A-Za-z0-9._\-]+)?")
PROVIDER_KEYS = frozenset(
    {
        "order",
        "allow_fallbacks",
        "require_parameters",
        "data_collection",
        "zdr",
        "only",
        "ignore",
        "quantizations",
        "sort",
        "max_price",
        "preferred_max_latency",
        "preferred_min_throughput",
        "enforce_distillable_text",
    }
)


def check_key(authorization: str | None) -> str:
    """Return the bearer key or raise the 401 OpenRouter gives for a missing or unknown key."""
    if not authorization:
        raise SimError(401, NO_AUTH)
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise SimError(401, NO_AUTH)
    if "invalid" in key or "revoked" in key:
        raise SimError(401, USER_NOT_FOUND)
    return key


def check_billing(key: str) -> None:
    """402 for a ``nocredit`` key, 429 for a ``ratelimited`` key (generation endpoints only)."""
    if "nocredit" in key:
        raise SimError(402, INSUFFICIENT_CREDITS)
    if "ratelimited" in key:
        raise rate_limited()


def check_model_id(model: object) -> str:
    """Return a syntactically valid model id or raise 400."""
    if not isinstance(model, str) or _MODEL_ID.fullmatch(model) is None:
        raise SimError(400, simple_error(400, f"{model} is not a valid model ID", user_id=True))
    return model


def check_provider(provider: object) -> None:
    """Reject unknown keys inside ``provider`` (and a non-object ``provider``) with 400."""
    if provider is None:
        return
    if not isinstance(provider, dict):
        raise SimError(400, error_body(400, "provider: Expected object, received " + type(provider).__name__))
    unknown = sorted(k for k in provider if k not in PROVIDER_KEYS)
    if unknown:
        keys = ", ".join(f"'{k}'" for k in unknown)
        raise SimError(400, error_body(400, f"provider: Unrecognized key(s) in object: {keys}"))


def _refusal(model: str, prompt_tokens: int | None) -> SimError | None:
    """Why ``model`` cannot serve this request, or None when it can."""
    base, _, _ = model.partition(":")
    slug = base.partition("/")[2]
    if "nonexistent" in slug:
        return SimError(404, simple_error(404, f"No endpoints found for {model}.", user_id=True))
    if "-down" in slug:
        meta: dict[str, Any] = {
            "raw": f"{model} is temporarily unavailable (simulated outage)",
            "provider_name": provider_name(model),
            "error_type": "provider_unavailable",
        }
        return SimError(502, error_body(502, "Provider returned error", meta))
    limit = CONTEXT_LENGTHS.get(base)
    if limit is not None and prompt_tokens is not None and prompt_tokens > limit:
        message = (
            f"This endpoint's maximum context length is {limit} tokens. However, you requested about "
            f"{prompt_tokens} tokens ({prompt_tokens} of text input). Please reduce the length of either "
            'one, or use the "middle-out" transform to compress your prompt automatically.'
        )
        return SimError(400, simple_error(400, message, user_id=True))
    return None


def route_model(model: str, fallbacks: object, prompt_tokens: int | None = None) -> str:
    """The model that serves: ``model`` first, then each of ``models`` in order.

    Raises the primary model's error when none can serve (so "all down" is a 502).
    """
    candidates = [model]
    if fallbacks is not None:
        if not isinstance(fallbacks, list):
            raise SimError(400, error_body(400, "models: Expected array"))
        candidates.extend(check_model_id(m) for m in fallbacks)
    first_error: SimError | None = None
    for candidate in candidates:
        error = _refusal(candidate, prompt_tokens)
        if error is None:
            return candidate
        if first_error is None:
            first_error = error
    assert first_error is not None
    raise first_error
