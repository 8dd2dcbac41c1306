"""POST /api/ai/chat/completion — InsForge's chat route, plain JSON or SSE (shapes: api/native_shapes.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..flows import chat
from ..schemas import ChatRequest
from . import native_shapes as native
from .clients import client_of
from .deps import Svc, User, call_context
from .responses import answer_response, stream_response

router = APIRouter(tags=["generation"])


@router.post("/api/ai/chat/completion")
async def chat_completion_route(body: ChatRequest, request: Request, svc: Svc, who: User) -> Response:
    ctx = call_context(request, who)
    if body.stream:
        stream = await chat.stream(svc, ctx, body)
        return stream_response(stream, native.chat_frames(stream, client_of(request)))
    answer = await chat.answer(svc, ctx, body)
    return await answer_response(svc, answer, native.chat_body(answer))
