"""Admin routes for enabled models: the upstream catalog and configuration CRUD."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import Field, StringConstraints

from ..cache import CacheSettings
from ..errors import invalid_input, not_found
from ..policy import ContentPolicy
from ..request_policy import RequestPolicy, parse
from ..schemas import ModelId, NoNul, RequestBody
from ..store import audit
from ..store import configs as store
from ..store.usage import money
from ..timefmt import iso_or_none
from .clients import Client, client_of
from .deps import Admin, Svc, client_ip
from .responses import JSON

router = APIRouter(tags=["configurations"])

InModality = Literal["text", "image", "audio", "video", "file"]
OutModality = Literal["text", "image", "audio", "embeddings"]
Prompt = Annotated[str, StringConstraints(max_length=50_000), NoNul]


class ConfigurationIn(RequestBody):
    inputModality: list[InModality] = Field(min_length=1, max_length=5)
    outputModality: list[OutModality] = Field(min_length=1, max_length=4)
    provider: Annotated[str, StringConstraints(min_length=1, max_length=255), NoNul] = "openrouter"
    modelId: ModelId
    systemPrompt: Prompt | None = None
    fallbackModels: list[ModelId] | None = Field(default=None, max_length=5)
    contentPolicy: ContentPolicy | None = None
    requestPolicy: RequestPolicy | None = None
    cache: CacheSettings | None = None


class ConfigurationPatch(RequestBody):
    systemPrompt: Prompt | None = None
    fallbackModels: list[ModelId] | None = Field(default=None, max_length=5)
    contentPolicy: ContentPolicy | None = None
    requestPolicy: RequestPolicy | None = None
    cache: CacheSettings | None = None


def _policy(p: ContentPolicy | RequestPolicy | CacheSettings | None) -> dict[str, object] | None:
    return p.model_dump() if p is not None else None


@router.get("/api/ai/models")
async def list_models(request: Request, svc: Svc, _: Admin) -> JSON:
    """The upstream catalog as the active key sees it: modalities, prices per million tokens, big four first.

    Flat for every SDK but Python's, which reads it grouped by output modality (api/clients.py).
    """
    models = await svc.catalog.list_models(svc)
    return JSON(models_body(models, client_of(request), configured=bool(models)))


@router.post("/api/ai/configurations", status_code=201)
async def create_configuration(body: ConfigurationIn, request: Request, svc: Svc, who: Admin) -> JSON:
    db = svc.db
    async with db.transaction() as conn:
        config_id, _created = await store.upsert(
            conn,
            db,
            model_id=body.modelId,
            provider=body.provider,
            input_modality=list(dict.fromkeys(body.inputModality)),
            output_modality=list(dict.fromkeys(body.outputModality)),
            system_prompt=body.systemPrompt,
            fallback_models=body.fallbackModels,
            content_policy=_policy(body.contentPolicy),
            set_policy="contentPolicy" in body.model_fields_set,
            request_policy=_policy(body.requestPolicy),
            set_request_policy="requestPolicy" in body.model_fields_set,
            cache=_policy(body.cache),
            set_cache="cache" in body.model_fields_set,
        )
        await audit.record(
            conn,
            db,
            actor=who.actor,
            action="CREATE_CONFIGURATION",
            details={
                "configId": config_id,
                "inputModality": body.inputModality,
                "outputModality": body.outputModality,
                "provider": body.provider,
                "modelId": body.modelId,
                "fallbackModels": body.fallbackModels,
                "contentPolicy": _policy(body.contentPolicy),
                "requestPolicy": _policy(body.requestPolicy),
                "cache": _policy(body.cache),
            },
            ip=client_ip(request),
        )
    svc.configs.invalidate()
    return JSON({"id": config_id, "message": "AI configuration created successfully"}, status_code=201)


@router.get("/api/ai/configurations")
async def list_configurations(svc: Svc, _: Admin) -> JSON:
    rows = await store.list_active_with_usage(svc.db)
    return JSON(
        [
            {
                "id": str(r["id"]),
                "modality": _modality(r["output_modality"]),
                "inputModality": r["input_modality"],
                "outputModality": r["output_modality"],
                "provider": r["provider"],
                "modelId": r["model_id"],
                "systemPrompt": r["system_prompt"],
                "fallbackModels": r["fallback_models"],
                "contentPolicy": r["content_policy"],
                "requestPolicy": _policy(parse(r["request_policy"])),
                "cache": r.get("cache"),
                "createdAt": iso_or_none(r["created_at"]),
                "updatedAt": iso_or_none(r["updated_at"]),
                "usageStats": {
                    "totalInputTokens": int(r["total_input_tokens"]),
                    "totalOutputTokens": int(r["total_output_tokens"]),
                    "totalTokens": int(r["total_tokens"]),
                    "totalImageCount": int(r["total_image_count"]),
                    "totalRequests": int(r["total_requests"]),
                    "totalCostUsd": money(r["total_cost_usd"]),
                },
            }
            for r in rows
        ]
    )


@router.patch("/api/ai/configurations/{config_id}")
async def update_configuration(
    config_id: str, body: ConfigurationPatch, request: Request, svc: Svc, who: Admin
) -> JSON:
    fields = body.model_fields_set
    if not fields & {"systemPrompt", "fallbackModels", "contentPolicy", "requestPolicy", "cache"}:
        raise invalid_input("Validation error: systemPrompt: Required")
    changes: dict[str, object] = {}
    if "systemPrompt" in fields:
        changes["system_prompt"] = body.systemPrompt
    if "fallbackModels" in fields:
        changes["fallback_models"] = body.fallbackModels or []
    if "contentPolicy" in fields:
        changes["content_policy"] = _policy(body.contentPolicy)
    if "requestPolicy" in fields:
        changes["request_policy"] = _policy(body.requestPolicy)
    if "cache" in fields:
        changes["cache"] = _policy(body.cache)
    if not store.is_uuid(config_id) or not await store.exists(svc.db, config_id):
        raise not_found("AI configuration not found")
    cid = config_id
    db = svc.db
    async with db.transaction() as conn:
        if not await store.update(conn, db, cid, changes):
            raise not_found("AI configuration not found")
        await audit.record(
            conn,
            db,
            actor=who.actor,
            action="UPDATE_CONFIGURATION",
            details={"configId": cid, "changes": {_camel(k): v for k, v in changes.items()}},
            ip=client_ip(request),
        )
    svc.configs.invalidate()
    return JSON({"message": "AI configuration updated successfully"})


@router.delete("/api/ai/configurations/{config_id}")
async def disable_configuration(config_id: str, request: Request, svc: Svc, who: Admin) -> JSON:
    """Soft-disable: the model stops being served, its usage rows stay."""
    if not store.is_uuid(config_id):
        raise not_found("AI configuration not found")
    cid = config_id
    db = svc.db
    async with db.transaction() as conn:
        if not await store.disable(conn, db, cid):
            raise not_found("AI configuration not found")
        await audit.record(
            conn, db, actor=who.actor, action="DISABLE_CONFIGURATION", details={"configId": cid}, ip=client_ip(request)
        )
    svc.configs.invalidate()
    return JSON({"message": "AI configuration disabled successfully"})


def price_level(model: dict[str, Any]) -> int:
    """A coarse price band from the dearer of the per-million prices: 0 free, 1 under $2, 2 under $15,
    3 above (the Swift and Kotlin SDKs show it; Kotlin requires it)."""
    top = max(float(model.get("inputPrice") or 0), float(model.get("outputPrice") or 0))
    if top <= 0:
        return 0
    return 1 if top < 2 else 2 if top < 15 else 3


def models_body(models: list[dict[str, Any]], client: Client, *, configured: bool) -> Any:
    """The catalog flat (every SDK but Python), or grouped by output modality (the Python SDK).

    `configured` says whether an upstream key is set; without one the catalog is empty and the
    grouped shape says so rather than looking like a provider with no models.
    """
    flat = [{**m, "priceLevel": price_level(m)} for m in models]
    if client is not Client.PYTHON:
        return flat

    def group(modality: str) -> list[dict[str, Any]]:
        chosen = [_openrouter_model(m) for m in flat if modality in (m.get("outputModality") or ())]
        return [{"provider": "openrouter", "configured": configured, "models": chosen}]

    return {"text": group("text"), "image": group("image")}


def _openrouter_model(m: dict[str, Any]) -> dict[str, Any]:
    """One catalog entry with the OpenRouter-style keys the Python SDK reads, plus the flat ones."""
    return {
        **m,
        "name": m.get("id"),
        "context_length": m.get("contextLength"),
        "architecture": {"input_modalities": m.get("inputModality"), "output_modalities": m.get("outputModality")},
        "pricing": {"prompt": m.get("inputPrice"), "completion": m.get("outputPrice"), "unit": "USD per 1M tokens"},
    }


def _modality(output: list[str]) -> str:
    """The one-word kind of model the Python SDK shows: what it generates, `text` unless it makes
    images or embeddings."""
    for kind in ("image", "embeddings", "audio"):
        if kind in output:
            return kind
    return "text"


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)
