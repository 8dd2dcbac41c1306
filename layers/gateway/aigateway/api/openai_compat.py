"""The OpenAI-compatible surface under `/api/ai/v1`: chat completions, embeddings, models.

Same auth (`User`), flows, gating, limits and usage as the native routes; only the shapes
differ (requests: api/openai_requests.py, answers: api/openai_shapes.py). Every failure under
`/api/ai/v1` is answered in OpenAI's error shape by api/failures.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..flows import chat
from ..flows.embeddings import embeddings as embeddings_flow
from ..schemas import EmbeddingsRequest
from ..store.configs import list_active_models
from . import openai_shapes as shapes
from .deps import Svc, User, call_context
from .openai_requests import OpenAIChatRequest, to_native
from .responses import JSON, answer_response, stream_response


def _router() -> APIRouter:
    return APIRouter(prefix="/api/ai/v1", tags=["openai-compatible"])


# One router per Lambda function (the front door sends /api/ai/v1/chat/* to the streaming chat
# function, /api/ai/v1/embeddings* to embeddings, the rest to configs); `router` has all three.
chat_router = _router()
embeddings_router = _router()
models_router = _router()


@chat_router.post("/chat/completions")
async def chat_completions(body: OpenAIChatRequest, request: Request, svc: Svc, who: User) -> Response:
    native, extra = to_native(body)
    ctx = call_context(request, who)
    if native.stream:
        stream = await chat.stream(svc, ctx, native, extra)
        return stream_response(stream, shapes.chat_frames(stream, include_usage=body.include_usage))
    answer = await chat.answer(svc, ctx, native, extra)
    return await answer_response(svc, answer, shapes.chat_body(answer))


@embeddings_router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request, svc: Svc, who: User) -> Response:
    answer = await embeddings_flow(svc, call_context(request, who), body)
    return await answer_response(svc, answer, shapes.embeddings_body(answer))


@models_router.get("/models")
async def list_models(svc: Svc, _: User) -> JSON:
    return JSON(shapes.models_body(await list_active_models(svc.db)))


router = APIRouter()
for _part in (chat_router, embeddings_router, models_router):
    router.include_router(_part)
