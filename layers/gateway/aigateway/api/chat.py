"""POST /api/ai/chat/completion — plain JSON or SSE (spec §4, CONTRACT §3)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..flows.chat_native import chat_completion
from ..schemas import ChatRequest
from .deps import Svc, User, call_context

router = APIRouter(tags=["generation"])


@router.post("/api/ai/chat/completion")
async def chat_completion_route(body: ChatRequest, request: Request, svc: Svc, who: User) -> Response:
    return await chat_completion(svc, call_context(request, who), body)
