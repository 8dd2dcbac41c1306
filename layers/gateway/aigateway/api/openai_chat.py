"""`POST /api/ai/v1/chat/completions`: OpenAI's chat completions over the native chat flow.

Same auth (`User`), flows, gating, limits and usage as the native routes; only the shapes differ
(requests: api/openai_requests.py, answers: api/openai_shapes.py). Every failure under `/api/ai/v1`
is answered in OpenAI's error shape by api/failures.py. The OpenAI routes are one module each
because each is served by a different Lambda function (the front door sends /api/ai/v1/chat/* to
the streaming chat function, /api/ai/v1/embeddings to embeddings, the rest to configs), and each
function should import only its own flow.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..flows import chat
from . import openai_shapes as shapes
from .deps import Svc, User, call_context
from .openai_requests import OpenAIChatRequest, to_native
from .responses import answer_response, stream_response

router = APIRouter(prefix="/api/ai/v1", tags=["openai-compatible"])


@router.post("/chat/completions")
async def chat_completions(body: OpenAIChatRequest, request: Request, svc: Svc, who: User) -> Response:
    native, extra = to_native(body)
    ctx = call_context(request, who)
    if native.stream:
        stream = await chat.stream(svc, ctx, native, extra)
        return stream_response(stream, shapes.chat_frames(stream, include_usage=body.include_usage))
    answer = await chat.answer(svc, ctx, native, extra)
    return await answer_response(svc, answer, shapes.chat_body(answer))
