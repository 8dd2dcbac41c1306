"""Admin routes for the BYOK OpenRouter key (docs/api.md#upstream-key-and-credits) and the active key's credits.

The key arrives once, in a POST body; it is checked live upstream, wrapped (KMS or the local
master key) and only its ciphertext and mask are stored. No response, audit record or log
line carries it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from .. import credentials
from ..errors import not_found
from .deps import Admin, Svc, client_ip
from .responses import JSON

router = APIRouter(tags=["gateway"])

MAX_KEY_CHARS = 512
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")  # it becomes an HTTP header: no spaces, no control characters


class ByokKeyIn(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_default=True)
    apiKey: str | None = None

    @field_validator("apiKey", mode="before")
    @classmethod
    def _check(cls, value: Any) -> str:
        # Messages never echo the value: a near-miss key is still a secret.
        if value is not None and not isinstance(value, str):
            raise PydanticCustomError("string_type", "API key must be a string")
        key = (value or "").strip()
        if not key:
            raise PydanticCustomError("required", "API key is required")
        if len(key) > MAX_KEY_CHARS:
            raise PydanticCustomError("too_long", f"API key must be at most {MAX_KEY_CHARS} characters")
        if not _PRINTABLE.match(key):
            raise PydanticCustomError("invalid", "API key must not contain spaces or control characters")
        return key


@router.get("/api/ai/gateway/config")
async def get_gateway_config(svc: Svc, _: Admin) -> JSON:
    return JSON(await svc.keys.status())


@router.post("/api/ai/gateway/config")
async def set_gateway_key(body: ByokKeyIn, request: Request, svc: Svc, who: Admin) -> JSON:
    key = body.apiKey
    assert key is not None  # the validator guarantees it
    await credentials.validate_new_key(svc.upstream, key)
    await svc.keys.set_byok(key, actor=who.actor, ip=client_ip(request))
    return JSON({"message": "OpenRouter API key configured successfully"})


@router.delete("/api/ai/gateway/config")
async def remove_gateway_key(request: Request, svc: Svc, who: Admin) -> JSON:
    if not await svc.keys.remove_byok(actor=who.actor, ip=client_ip(request)):
        raise not_found("No BYOK key configured")
    return JSON({"message": "OpenRouter API key removed successfully"})


@router.get("/api/ai/credits")
async def get_credits(svc: Svc, _: Admin) -> JSON:
    return JSON(await credentials.credits(svc.keys, svc.upstream))
