"""What the OpenAI SDKs send for batches: a multipart file upload and JSONL request lines.

Multipart is parsed with the standard library's MIME parser (a form with `purpose` and `file`
is a MIME multipart body): the usual parser package is not a runtime dependency of the Lambda
layer, and the body is already capped by the size limit. A batch line is OpenAI's
`{"custom_id", "method": "POST", "url", "body"}`; every line of a batch names the batch's
endpoint, and its body is converted to the native request exactly as the live OpenAI routes do
(api/openai_requests.py), so a line is checked before the batch exists, naming the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from ..batches import ItemRequest, check_not_streamed
from ..errors import GatewayError, invalid_input
from ..schemas import EmbeddingsRequest
from . import validation

ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/embeddings": "embeddings"}


@dataclass(frozen=True)
class Upload:
    purpose: str
    filename: str
    data: bytes


def read_upload(content_type: str | None, body: bytes) -> Upload:
    """The `purpose` and `file` of a multipart form; 400 INVALID_INPUT naming what is missing."""
    if not content_type or not content_type.lower().startswith("multipart/form-data"):
        raise invalid_input("Validation error: the upload must be multipart/form-data with `purpose` and `file`")
    from email.parser import BytesParser  # here: uploads are rare, cold starts are not
    from email.policy import HTTP

    msg = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    fields: dict[str, tuple[str | None, bytes]] = {}
    if msg.is_multipart():
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = (part.get_filename(), payload)
    if "file" not in fields:
        raise invalid_input("Validation error: file: Field required")
    if "purpose" not in fields:
        raise invalid_input("Validation error: purpose: Field required")
    purpose = fields["purpose"][1].decode("utf-8", "replace").strip()
    if purpose != "batch":
        raise invalid_input(f"Validation error: purpose: only 'batch' is supported (got {purpose[:40]!r})")
    filename, data = fields["file"]
    return Upload(purpose, (filename or "upload.jsonl")[:255].replace("\x00", ""), data)


def _line_error(n: int, what: str) -> GatewayError:
    return invalid_input(
        f"Validation error: line {n}: {what}", "Each line is one JSON request: custom_id, method, url, body."
    )


def parse_line(n: int, raw: bytes, endpoint: str) -> tuple[str, ItemRequest]:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _line_error(n, "not valid JSON") from None
    if not isinstance(line, dict):
        raise _line_error(n, "must be a JSON object")
    cid, body = line.get("custom_id"), line.get("body")
    if not isinstance(cid, str):
        raise _line_error(n, "custom_id: a string is required")
    if line.get("method", "POST") != "POST":
        raise _line_error(n, "method: only POST is supported")
    if line.get("url") != endpoint:
        raise _line_error(n, f"url: every line of this batch must name {endpoint}")
    if not isinstance(body, dict):
        raise _line_error(n, "body: a JSON object is required")
    from .openai_requests import OpenAIChatRequest, to_native  # here: only batch creation needs it

    try:
        if ENDPOINTS[endpoint] == "chat":
            native, extra = to_native(OpenAIChatRequest.model_validate(body))
            item = ItemRequest("chat", native, extra)
        else:
            item = ItemRequest("embeddings", EmbeddingsRequest.model_validate(body), {})
    except ValidationError as exc:
        message, _ = validation.render(list(exc.errors()), under="body")
        raise _line_error(n, message.removeprefix("Validation error: ")) from None
    except GatewayError as err:
        raise _line_error(n, err.message.removeprefix("Validation error: ")) from None
    check_not_streamed(item.request, f"line {n}: body")
    return cid, item


def parse_lines(data: bytes, endpoint: str) -> list[tuple[str, ItemRequest]]:
    """Every request of a JSONL input file (blank lines skipped), or the first line's error."""
    if endpoint not in ENDPOINTS:
        raise invalid_input(f"Validation error: endpoint: one of {', '.join(ENDPOINTS)} (got {endpoint[:80]!r})")
    return [parse_line(n, raw, endpoint) for n, raw in enumerate(data.splitlines(), 1) if raw.strip()]


def metadata(value: Any) -> dict[str, str] | None:
    """OpenAI's metadata: at most 16 string pairs."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16 or not all(isinstance(v, str) for v in value.values()):
        raise invalid_input("Validation error: metadata: at most 16 string values")
    return {str(k): v for k, v in value.items()}
