"""Batches as callers read them: the native batch object and result items, OpenAI's batch object
and its output and error files.

An item stores the upstream's answer as it came; it is shaped here when read, by the same
functions that shape a live answer (api/native_shapes.py, api/openai_shapes.py), so a batch item's
answer is the body a live call would have returned in that dialect.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..batches import request_id
from ..errors import RESPONSE_TOO_LARGE, GatewayError
from ..flows.common import Answer
from ..limits import Admission
from ..store.batches import timestamp
from ..store.usage import UsageRecord
from ..timefmt import iso_or_none, iso_utc
from .failures import openai_error_type


def _shape(dialect: str, kind: str) -> Any:
    """The live shaping function; imported when an answer is read, not at the function's cold start."""
    from . import native_shapes, openai_shapes

    module: Any = native_shapes if dialect == "native" else openai_shapes
    return module.chat_body if kind == "chat" else module.embeddings_body


def answer_body(dialect: str, batch_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """A done item's answer in the dialect's live shape. The shaping functions take an `Answer` and
    read only its result, model and request id; the usage and admission are placeholders."""
    rid = request_id(batch_id, item["idx"])
    model = item["model"] or ""
    answer = Answer(item["result"], model, rid, UsageRecord(rid, model), Admission())
    body: dict[str, Any] = _shape(dialect, item["kind"])(answer)
    return body


def counts(row: dict[str, Any]) -> dict[str, int]:
    return {
        "total": int(row["total"]),
        "done": int(row["done"]),
        "failed": int(row["failed"]),
        "pending": int(row["pending"]),
        "cancelled": int(row["cancelled"]),
    }


def native_batch(row: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "status": row["status"],
        "counts": counts(row),
        "createdAt": iso_utc(row["created_at"]),
        "completedAt": iso_or_none(row["completed_at"]),
        "cancelledAt": iso_or_none(row["cancelled_at"]),
        "stoppedBy": row["stopped_by"],
        "upstream": row["upstream"],
    }
    if row["metadata"] is not None:
        out["metadata"] = row["metadata"]
    return out


def native_result(batch_id: str, item: dict[str, Any]) -> dict[str, Any]:
    """One item: its answer (done), its error in the contract's body (failed), or only its state."""
    out: dict[str, Any] = {"customId": item["custom_id"], "type": item["kind"], "status": item["status"]}
    if item["status"] == "done":
        out["statusCode"] = item["status_code"]
        out["body"] = answer_body("native", batch_id, item)
    elif item["status"] == "failed":
        out["statusCode"] = item["status_code"]
        out["body"] = item["error"]
    return out


def too_large(what: str, cap: int, batch_id: str) -> GatewayError:
    return GatewayError(
        RESPONSE_TOO_LARGE,
        413,
        f"{what} is larger than this endpoint's {cap}-byte response limit.",
        f"Read the answers a few at a time: GET /api/ai/batches/{batch_id}/results?limit=1",
    )


def results_page(batch_id: str, rows: list[dict[str, Any]], limit: int, cap: int) -> dict[str, Any]:
    """A page of results that fits `cap` bytes (0: no cap; Lambda's buffered answers are capped):
    items are added while they fit, and `nextCursor` says where the next page starts."""
    out: list[dict[str, Any]] = []
    size = 64  # the envelope
    for r in rows:
        item = native_result(batch_id, r)
        if cap:
            size += len(orjson.dumps(item)) + 1
            if size > cap:
                if not out:
                    raise too_large(f"The answer of item {r['custom_id']!r}", cap, batch_id)
                return {"results": out, "nextCursor": r["idx"]}
        out.append(item)
    more = len(rows) == limit and rows
    return {"results": out, "nextCursor": rows[-1]["idx"] + 1 if more else None}


# ---- OpenAI --------------------------------------------------------------------------------------

_OPENAI_STATUS = {"in_progress": "in_progress", "cancelling": "cancelling", "cancelled": "cancelled"}


def output_file_id(batch_id: str) -> str:
    return f"file-{batch_id}-output"


def error_file_id(batch_id: str) -> str:
    return f"file-{batch_id}-errors"


def openai_batch(row: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's `batch` object; the output and error files exist once the batch ended."""
    c = counts(row)
    ended = row["status"] in ("completed", "cancelled")
    created = timestamp(row["created_at"])
    return {
        "id": row["id"],
        "object": "batch",
        "endpoint": row["endpoint"] or "/v1/chat/completions",
        "errors": None,
        "input_file_id": row["input_file_id"] or "",
        "completion_window": "24h",
        "status": _OPENAI_STATUS.get(row["status"], "completed"),
        "output_file_id": output_file_id(row["id"]) if ended and c["done"] else None,
        "error_file_id": error_file_id(row["id"]) if ended and (c["failed"] or c["cancelled"]) else None,
        "created_at": created,
        "in_progress_at": created,
        "expires_at": (created or 0) + 86400,
        "finalizing_at": None,
        "completed_at": timestamp(row["completed_at"]) if row["status"] == "completed" else None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": timestamp(row["cancelled_at"]),
        "cancelled_at": timestamp(row["completed_at"]) if row["status"] == "cancelled" else None,
        "request_counts": {"total": c["total"], "completed": c["done"], "failed": c["failed"] + c["cancelled"]},
        "metadata": row["metadata"],
    }


def openai_line(batch_id: str, item: dict[str, Any]) -> bytes:
    """One line of the output file (a done item) or of the error file (failed, cancelled)."""
    rid = request_id(batch_id, item["idx"])
    line_id = f"batch_req_{batch_id}_{item['idx']}"
    if item["status"] == "done":
        response: dict[str, Any] | None = {
            "status_code": 200,
            "request_id": rid,
            "body": answer_body("openai", batch_id, item),
        }
        error = None
    elif item["status"] == "failed":
        err = dict(item["error"] or {})
        code = item["status_code"] or 500
        body = {
            **err,
            "error": {
                "message": err.get("message"),
                "type": openai_error_type(code),
                "code": err.get("error"),
                "param": None,
            },
        }
        response = {"status_code": code, "request_id": rid, "body": body}
        error = None
    else:
        response = None
        error = {"code": "batch_cancelled", "message": "This request was cancelled before it ran."}
    return orjson.dumps({"id": line_id, "custom_id": item["custom_id"], "response": response, "error": error}) + b"\n"
