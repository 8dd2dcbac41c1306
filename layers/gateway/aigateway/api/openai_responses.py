"""`POST /api/ai/v1/responses`: OpenAI's Responses API over the chat flow, plain and streamed.

The request becomes a chat request (api/responses_requests.py) and runs `flows.chat` exactly as
`/api/ai/v1/chat/completions` does, so auth, gating, the admin's system prompt, content policy,
limits, usage rows and cost are the chat ones; the answer and the stream events are shaped by
api/responses_shapes.py and settled by api/responses.py before their last byte. Every failure
is answered in OpenAI's error shape (api/failures.py). Served by the chat function, because it
streams: the front door sends /api/ai/v1/responses* there.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import not_found
from ..flows import chat
from .deps import Svc, User, call_context
from .responses import answer_response, stream_response
from .responses_requests import ResponsesRequest, to_native
from .responses_shapes import ResponseHead, response_body, response_events

router = APIRouter(prefix="/api/ai/v1", tags=["openai-compatible"])


@router.post("/responses")
async def create_response(body: ResponsesRequest, request: Request, svc: Svc, who: User) -> Response:
    native, extra = to_native(body)
    ctx = call_context(request, who)
    head = ResponseHead.of(body, ctx.request_id)
    if native.stream:
        stream = await chat.stream(svc, ctx, native, extra)
        return stream_response(stream, response_events(stream, head))
    answer = await chat.answer(svc, ctx, native, extra)
    return await answer_response(svc, answer, response_body(answer, head))


@router.get("/responses/{response_id}")
async def get_response(response_id: str, who: User) -> Response:
    """Nothing is stored (api/responses_requests.py), so no response can be fetched again: a 404 saying
    so (to an authenticated caller, as every route answers), rather than the generic unknown-path one."""
    err = not_found(f"Response {response_id} not found: this gateway does not store responses")
    err.next_actions = "Keep the answer you received; send the conversation in `input` for the next turn."
    raise err
