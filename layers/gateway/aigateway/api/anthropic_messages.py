"""`POST /api/ai/v1/messages`: Anthropic's Messages API over the native chat flow.

The Anthropic SDKs work with `base_url` set to the gateway's `/api/ai` (they append
`/v1/messages`). Same flows, gating, admin system prompt, content policy, limits and usage as chat
completions; only the shapes differ (requests: api/anthropic_requests.py, answers and streams:
api/anthropic_shapes.py, errors: api/failures.py by path). Served by the streaming chat function.

Credentials: `Authorization: Bearer <JWT or admin key>` as on every route, or `x-api-key`
holding either, where the Anthropic SDKs have sent their key; Bearer wins when both are sent.
`anthropic-version` is accepted and not read: there is one version of these shapes. Answers carry
the request id also as `request-id`, where the SDKs read it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..errors import AI_INVALID_MODEL, GatewayError
from ..flows import chat
from . import anthropic_shapes as shapes
from .anthropic_requests import AnthropicRequest, to_native
from .deps import ApiKeyUser, Svc, call_context
from .responses import answer_response, stream_response

router = APIRouter(prefix="/api/ai/v1", tags=["anthropic-compatible"])


def _in_anthropic_terms(err: GatewayError) -> GatewayError:
    """Anthropic answers an unknown model with 404 (the SDKs raise NotFoundError); the gateway's
    400 AI_INVALID_MODEL for a model that is not enabled becomes that, with the same code and message."""
    if err.code != AI_INVALID_MODEL:
        return err
    return GatewayError(err.code, 404, err.message, err.next_actions, err.headers)


@router.post("/messages")
async def messages(body: AnthropicRequest, request: Request, svc: Svc, who: ApiKeyUser) -> Response:
    native, extra = to_native(body)
    ctx = call_context(request, who)
    response: Response
    try:
        if native.stream:
            stream = await chat.stream(svc, ctx, native, extra)
            response = stream_response(stream, shapes.message_frames(stream))
        else:
            answer = await chat.answer(svc, ctx, native, extra)
            response = await answer_response(svc, answer, shapes.message_body(answer))
    except GatewayError as err:
        raise _in_anthropic_terms(err) from None
    response.headers["request-id"] = ctx.request_id  # where the Anthropic SDKs read it (`_request_id`)
    return response
