"""Admin routes for enabled models: the upstream catalog and configuration CRUD."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import Field, StringConstraints

from ..errors import invalid_input, not_found
from ..policy import ContentPolicy
from ..request_policy import RequestPolicy, parse
from ..schemas import ModelId, NoNul, RequestBody
from ..store import audit
from ..store import configs as store
from ..store.usage import money
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


class ConfigurationPatch(RequestBody):
    systemPrompt: Prompt | None = None
    fallbackModels: list[ModelId] | None = Field(default=None, max_length=5)
    contentPolicy: ContentPolicy | None = None
    requestPolicy: RequestPolicy | None = None


def _policy(p: ContentPolicy | RequestPolicy | None) -> dict[str, object] | None:
    return p.model_dump() if p is not None else None


@router.get("/api/ai/models")
async def list_models(svc: Svc, _: Admin) -> JSON:
    """The upstream catalog as the active key sees it: modalities, prices per million tokens, big four first."""
    return JSON(await svc.catalog.list_models(svc))


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
                "inputModality": r["input_modality"],
                "outputModality": r["output_modality"],
                "provider": r["provider"],
                "modelId": r["model_id"],
                "systemPrompt": r["system_prompt"],
                "fallbackModels": r["fallback_models"],
                "contentPolicy": r["content_policy"],
                "requestPolicy": _policy(parse(r["request_policy"])),
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
    if not fields & {"systemPrompt", "fallbackModels", "contentPolicy", "requestPolicy"}:
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


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)
