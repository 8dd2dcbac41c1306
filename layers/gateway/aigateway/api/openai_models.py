"""`GET /api/ai/v1/models` and `/models/{id}`: the enabled models in OpenAI's shapes (database only).

Model ids carry slashes and colons (`openai/gpt-4o-mini`, `anthropic/claude-3.7-sonnet:thinking`),
and the SDKs put them in the path as they are, so the id is read with the `path` converter. A
model that is not enabled is a 404 (OpenAI's `client.models.retrieve` raises `NotFoundError`),
whether or not the upstream knows it: a caller may only use what an admin enabled.
"""

from __future__ import annotations

from fastapi import APIRouter

from ..errors import AI_INVALID_MODEL, GatewayError
from ..store.configs import find_active_model, list_active_models
from . import openai_shapes as shapes
from .deps import Svc, User
from .responses import JSON

router = APIRouter(prefix="/api/ai/v1", tags=["openai-compatible"])


@router.get("/models")
async def list_models(svc: Svc, _: User) -> JSON:
    return JSON(shapes.models_body(await list_active_models(svc.db)))


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, svc: Svc, _: User) -> JSON:
    # An id no configuration can hold (configs.model_id is at most 255 characters of text, no NUL)
    # is not looked up: it is simply not enabled.
    storable = 0 < len(model_id) <= 255 and "\x00" not in model_id
    found = await find_active_model(svc.db, model_id) if storable else None
    if found is None:
        raise GatewayError(
            AI_INVALID_MODEL,
            404,
            f"Model '{model_id[:200]}' is not enabled on this gateway",
            "List the enabled models with GET /api/ai/v1/models.",
        )
    return JSON(shapes.model_object(found))
