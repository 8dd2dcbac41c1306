"""POST /api/ai/embeddings (spec §6, CONTRACT §3).

Gated like chat: the model must be enabled by an admin (400 `AI_INVALID_MODEL` otherwise), unlike
InsForge G1, which serves any embedding model; see flows/embeddings.py for why.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..flows.embeddings import embeddings
from ..schemas import EmbeddingsRequest
from .deps import Svc, User, call_context

router = APIRouter(tags=["generation"])


@router.post("/api/ai/embeddings")
async def embeddings_route(body: EmbeddingsRequest, request: Request, svc: Svc, who: User) -> Response:
    return await embeddings(svc, call_context(request, who), body)
