"""`POST /api/ai/v1/embeddings`: OpenAI's embeddings over the native embeddings flow."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..flows.embeddings import embeddings as embeddings_flow
from ..schemas import EmbeddingsRequest
from . import openai_shapes as shapes
from .deps import Svc, User, call_context
from .responses import answer_response

router = APIRouter(prefix="/api/ai/v1", tags=["openai-compatible"])


@router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request, svc: Svc, who: User) -> Response:
    answer = await embeddings_flow(svc, call_context(request, who), body)
    return await answer_response(svc, answer, shapes.embeddings_body(answer))
