"""POST /api/ai/image/generation and the local server's signed image files.

`GET /api/ai/images/files/{name}?expires=&sig=` serves images stored on disk when no S3 bucket is
configured (image_store.LocalImageStore). It needs no bearer token: like an S3 presigned URL, the
HMAC signature in the link is the authorisation. With a bucket configured the route is a 404.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from ..errors import not_found
from ..flows.images import image_generation
from ..image_store import local_store
from ..schemas import ImageRequest
from . import native_shapes as native
from .deps import Svc, User, call_context
from .params import LinkExpiry
from .responses import answer_response

router = APIRouter(tags=["generation"])


@router.post("/api/ai/image/generation")
async def image_generation_route(body: ImageRequest, request: Request, svc: Svc, who: User) -> Response:
    answer = await image_generation(svc, call_context(request, who), body, str(request.base_url))
    return await answer_response(svc, answer, native.images_body(answer))


@router.get("/api/ai/images/files/{name}", include_in_schema=False)
async def image_file_route(name: str, svc: Svc, expires: LinkExpiry = None, sig: str | None = None) -> Response:
    store = local_store(svc)
    if store is None:
        raise not_found("Images are served from object storage on this deployment.")
    path, media_type, until = store.open(name, expires, sig)
    max_age = max(0, until - int(time.time()))
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": f"private, max-age={max_age}"})
