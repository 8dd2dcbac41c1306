"""OpenAI's files and batches APIs under `/api/ai/v1`, so `client.files.create` and
`client.batches.create` work unchanged; the batch runs on the gateway's own worker like a native one
(flows/batches.py). Files: purpose `batch` only. A batch's output and error files have ids derived
from the batch and are rendered from its items when read (batch_files.py says why)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from .. import batches
from ..auth import Principal
from ..batches import new_id
from ..errors import invalid_input, not_found
from ..flows import batches as flow
from ..store import batches as store
from . import batch_shapes as shapes
from .batches import Owner
from .deps import Svc, client_ip, forwarded_headers
from .openai_batch_requests import metadata, parse_lines, read_upload
from .params import Limit
from .responses import JSON

router = APIRouter(prefix="/api/ai/v1", tags=["openai-compatible"])
PAGE = 1000  # items read at a time when an output file is rendered


def _file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": store.timestamp(row["created_at"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "status_details": None,
    }


async def _uploaded(svc: Svc, who: Principal, file_id: str) -> dict[str, Any]:
    """An uploaded file's row, if this caller may see it; 404 otherwise."""
    found = await store.get_file(svc.db, file_id, **batches.may_see(who))
    if found is None:
        raise not_found(f"File {file_id} not found")
    return found


async def _uploaded_bytes(svc: Svc, who: Principal, file_id: str) -> bytes:
    """An uploaded file's content, if this caller may see it and it is still stored; 404 otherwise."""
    await _uploaded(svc, who, file_id)
    data = await svc.batch_files.get(file_id)
    if data is None:
        raise not_found(f"File {file_id} not found")
    return data


@router.post("/files")
async def upload_file(request: Request, svc: Svc, who: Owner) -> JSON:
    upload = read_upload(request.headers.get("content-type"), await request.body())
    file_id = new_id("file-")
    await svc.batch_files.put(file_id, upload.data)
    row = await store.add_file(
        svc.db,
        file_id,
        user_id=who.user_id,
        via_api_key=who.via_api_key,
        purpose=upload.purpose,
        filename=upload.filename,
        size=len(upload.data),
    )
    return JSON(_file_object(row))


@router.get("/files")
async def list_files(svc: Svc, who: Owner, limit: Limit = 20, after: Annotated[str | None, Query()] = None) -> JSON:
    """The caller's uploaded files (a batch's output and error files are reached from the batch)."""
    rows = await store.list_files(svc.db, limit=limit + 1, after=after, **batches.may_see(who))
    data = [_file_object(r) for r in rows[:limit]]
    return JSON({"object": "list", "data": data, "has_more": len(rows) > limit})


@router.delete("/files/{file_id}")
async def delete_file(file_id: str, svc: Svc, who: Owner) -> JSON:
    """Delete an uploaded file (batches made from it keep their items)."""
    await _uploaded(svc, who, file_id)
    await svc.batch_files.delete(file_id)
    await store.delete_file(svc.db, file_id)
    return JSON({"id": file_id, "object": "file", "deleted": True})


def _derived(file_id: str) -> tuple[str, str] | None:
    """(batch id, which) of an output or error file id."""
    for which in ("output", "errors"):
        suffix = f"-{which}"
        if file_id.startswith("file-batch_") and file_id.endswith(suffix):
            return file_id[len("file-") : -len(suffix)], which
    return None


@router.get("/files/{file_id}")
async def get_file(file_id: str, svc: Svc, who: Owner) -> JSON:
    derived = _derived(file_id)
    if derived:
        row = await flow.get(svc, who, derived[0])
        name = f"{derived[0]}_{derived[1]}.jsonl"
        size = sum([len(line) async for line in _lines(svc, *derived)])
        return JSON(_file_object({**row, "id": file_id, "bytes": size, "filename": name, "purpose": "batch_output"}))
    return JSON(_file_object(await _uploaded(svc, who, file_id)))


@router.get("/files/{file_id}/content")
async def file_content(file_id: str, svc: Svc, who: Owner) -> Response:
    derived = _derived(file_id)
    if derived:
        return Response(await _rendered(svc, who, *derived), media_type="application/jsonl")
    return Response(await _uploaded_bytes(svc, who, file_id), media_type="application/jsonl")


async def _rendered(svc: Svc, who: Principal, batch_id: str, which: str) -> bytes:
    await flow.get(svc, who, batch_id)
    cap = svc.settings.max_response_bytes
    out: list[bytes] = []
    size = 0
    async for line in _lines(svc, batch_id, which):
        size += len(line)
        if cap and size > cap:
            raise shapes.too_large(f"The {which} file of batch {batch_id}", cap, batch_id)
        out.append(line)
    return b"".join(out)


async def _lines(svc: Svc, batch_id: str, which: str) -> AsyncIterator[bytes]:
    """The lines of a batch's output or error file, rendered from its item rows a page at a time
    (the file's content and, summed, its size in the file object)."""
    wanted = ("done",) if which == "output" else ("failed", "cancelled")
    after = 0
    while True:
        rows = await store.results(svc.db, batch_id, after=after, limit=PAGE, finished_only=False)
        for r in rows:
            if r["status"] in wanted:
                yield shapes.openai_line(batch_id, r)
        if len(rows) < PAGE:
            return
        after = rows[-1]["idx"] + 1


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input_file_id: str
    endpoint: str
    completion_window: str = "24h"
    metadata: dict[str, Any] | None = None


@router.post("/batches")
async def create_batch(body: BatchCreate, request: Request, svc: Svc, who: Owner) -> JSON:
    owner = batches.owner_of(who, client_ip(request), forwarded_headers(request))
    if body.completion_window != "24h":
        raise invalid_input("Validation error: completion_window: only '24h' is supported")
    items = parse_lines(await _uploaded_bytes(svc, who, body.input_file_id), body.endpoint)
    batch_id = await flow.submit(
        svc,
        owner,
        items,
        dialect="openai",
        endpoint=body.endpoint,
        input_file_id=body.input_file_id,
        metadata=metadata(body.metadata),
    )
    return JSON(shapes.openai_batch(await flow.get(svc, who, batch_id)))


@router.get("/batches")
async def list_batches(svc: Svc, who: Owner, limit: Limit = 20, after: Annotated[str | None, Query()] = None) -> JSON:
    rows = await store.listing(svc.db, limit=limit + 1, after=after, **batches.may_see(who))
    data = [shapes.openai_batch(r) for r in rows[:limit]]
    return JSON(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(rows) > limit,
        }
    )


@router.get("/batches/{batch_id}")
async def get_batch(batch_id: str, svc: Svc, who: Owner) -> JSON:
    return JSON(shapes.openai_batch(await flow.get(svc, who, batch_id)))


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(batch_id: str, svc: Svc, who: Owner) -> JSON:
    return JSON(shapes.openai_batch(await flow.cancel(svc, who, batch_id)))
