"""`GET /api/ai/v1/models`: the enabled models in OpenAI's list shape (read from the database only)."""

from __future__ import annotations

from fastapi import APIRouter

from ..store.configs import list_active_models
from . import openai_shapes as shapes
from .deps import Svc, User
from .responses import JSON

router = APIRouter(prefix="/api/ai/v1", tags=["openai-compatible"])


@router.get("/models")
async def list_models(svc: Svc, _: User) -> JSON:
    return JSON(shapes.models_body(await list_active_models(svc.db)))
