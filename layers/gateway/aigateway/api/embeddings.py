"""POST /api/ai/embeddings — gated like chat: only models an admin enabled (docs/adr/ says why)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..flows.embeddings import embeddings
from ..schemas import EmbeddingsRequest
from . import native_shapes as native
from .deps import Svc, User, call_context
from .responses import answer_response

router = APIRouter(tags=["generation"])


@router.post("/api/ai/embeddings")
async def embeddings_route(body: EmbeddingsRequest, request: Request, svc: Svc, who: User) -> Response:
    answer = await embeddings(svc, call_context(request, who), body)
    return await answer_response(svc, answer, native.embeddings_body(answer))
