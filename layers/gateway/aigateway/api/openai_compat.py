"""The OpenAI-compatible surface under `/api/ai/v1` (CONTRACT §1): chat completions, embeddings, models.

Same auth (`User`), gating, limits and usage as the native routes. Every failure on these
routes — auth, validation, gating, upstream — is answered in the OpenAI error shape
(`flows.openai_compat.error_body`), which is why the router uses its own route class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ..errors import INTERNAL_ERROR, GatewayError
from ..flows import openai_compat as oa
from ..schemas import EmbeddingsRequest
from .app import validation_message
from .deps import Svc, User, call_context, request_id
from .responses import JSON

log = logging.getLogger("aigateway")


class OpenAIRoute(APIRoute):
    """Answers this route's failures in the OpenAI error shape instead of the app-wide one."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except GatewayError as err:
                return oa.error_response(err, request_id(request))
            except RequestValidationError as exc:
                errors = list(exc.errors())
                malformed = any(e.get("type") == "json_invalid" for e in errors)
                return oa.error_response(
                    oa.validation_error(validation_message(errors), malformed), request_id(request)
                )
            except HTTPException:
                raise  # 404/405 and friends: the app-wide handler answers them
            except Exception as exc:  # the contract: no unhandled 500, no stack trace
                rid = request_id(request)
                log.error("unhandled error", extra={"request_id": rid}, exc_info=exc)
                failure = GatewayError(INTERNAL_ERROR, 500, f"An unexpected error occurred. Request id: {rid}")
                return oa.error_response(failure, rid)

        return openai_handler


def _router() -> APIRouter:
    return APIRouter(prefix="/api/ai/v1", tags=["openai-compatible"], route_class=OpenAIRoute)


# One router per Lambda function (the front door sends /api/ai/v1/chat/* to the streaming chat
# function, /api/ai/v1/embeddings* to embeddings, the rest to configs); `router` has all three.
chat_router = _router()
embeddings_router = _router()
models_router = _router()


@chat_router.post("/chat/completions")
async def chat_completions(body: oa.OpenAIChatRequest, request: Request, svc: Svc, who: User) -> Response:
    return await oa.chat_completions(svc, call_context(request, who), body)


@embeddings_router.post("/embeddings")
async def embeddings(body: EmbeddingsRequest, request: Request, svc: Svc, who: User) -> Response:
    return await oa.embeddings(svc, call_context(request, who), body)


@models_router.get("/models")
async def list_models(svc: Svc, _: User) -> JSON:
    return JSON(await oa.list_models(svc))


router = APIRouter()
for _part in (chat_router, embeddings_router, models_router):
    router.include_router(_part)
