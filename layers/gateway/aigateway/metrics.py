"""Per-call CloudWatch metrics as Embedded Metric Format (EMF) log lines.

On Lambda (AWS_LAMBDA_FUNCTION_NAME set) each answered call prints one JSON line on stdout that
CloudWatch Logs turns into metrics: no CloudWatch API call, no permission, no latency on the
request. Locally everything here is a no-op.

Two pieces, because no single place sees everything: `RequestMetrics` (ASGI middleware) sees the
status, the error code of an error body, the time to the first body byte and the total latency;
`record_call` (called by flows.metering.settle) hands it the call's usage record (model, tokens,
cost). The middleware prints the line when the request ends, for calls that were settled and
for every error; successful admin reads print nothing. A record settled outside a request
(no middleware around it) is printed on its own.

Dimensions stay few (Service, and ErrorCode for errors: each combination is a billed custom
metric; the kind of call follows from the service); the model, kind and key source are plain
properties, for Logs Insights.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from .store.usage import UsageRecord

log = logging.getLogger(__name__)

NAMESPACE_DEFAULT = "AIGateway"
_ERROR_BODY_LIMIT = 4096  # an error body is small; a longer one is not parsed for its code


def enabled() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


@dataclass
class Call:
    """What one request measured; filled in by the middleware and by `record_call`."""

    started: float
    status: int | None = None
    stream: bool = False
    first_byte_ms: float | None = None
    error_code: str | None = None
    record: UsageRecord | None = None
    done: bool = False


_current: ContextVar[Call | None] = ContextVar("aigateway_metrics_call", default=None)


def emf_document(
    *,
    service: str,
    timestamp_ms: int,
    record: UsageRecord | None = None,
    latency_ms: float | None = None,
    first_byte_ms: float | None = None,
    status: int | None = None,
    error_code: str | None = None,
    namespace: str = NAMESPACE_DEFAULT,
) -> dict[str, Any]:
    """One EMF document: metrics under `_aws.CloudWatchMetrics`, their values as top-level keys."""
    kind = record.kind if record is not None else "request"
    values: dict[str, tuple[float, str]] = {}
    latency = latency_ms if latency_ms is not None else (record.latency_ms if record is not None else None)
    if latency is not None:
        values["Latency"] = (round(latency, 1), "Milliseconds")
    if first_byte_ms is not None:
        values["TimeToFirstByte"] = (round(first_byte_ms, 1), "Milliseconds")
    if record is not None:
        values["InputTokens"] = (record.input_tokens or 0, "Count")
        values["OutputTokens"] = (record.output_tokens or 0, "Count")
        if record.cost_usd is not None:
            values["CostUSD"] = (record.cost_usd, "None")
        if record.image_count:
            values["Images"] = (record.image_count, "Count")
    directives: list[dict[str, Any]] = []
    if values:
        directives.append(
            {
                "Namespace": namespace,
                "Dimensions": [["Service"]],
                "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
            }
        )
    doc: dict[str, Any] = {"Service": service, "Kind": kind}
    doc.update({name: value for name, (value, _) in values.items()})
    if error_code is not None:
        directives.append(
            {
                "Namespace": namespace,
                "Dimensions": [["Service"], ["Service", "ErrorCode"]],
                "Metrics": [{"Name": "Errors", "Unit": "Count"}],
            }
        )
        doc["ErrorCode"] = error_code
        doc["Errors"] = 1
    if status is not None:
        doc["status"] = status
    if record is not None:
        doc.update(model=record.model_id, key_source=record.key_source, request_id=record.request_id)
    doc["_aws"] = {"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}
    return doc


def _emit(call: Call | None, record: UsageRecord | None) -> None:
    try:
        _print(call, record)
    except Exception:  # metrics never fail a call
        log.debug("emitting the EMF line failed", exc_info=True)


def _print(call: Call | None, record: UsageRecord | None) -> None:
    now = time.time()
    latency = (time.perf_counter() - call.started) * 1000 if call is not None else None
    doc = emf_document(
        service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "aigateway",
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE_DEFAULT,
        timestamp_ms=int(now * 1000),
        record=record,
        latency_ms=latency,
        first_byte_ms=call.first_byte_ms if call is not None and call.stream else None,
        status=call.status if call is not None else None,
        error_code=call.error_code if call is not None else None,
    )
    sys.stdout.write(json.dumps(doc, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


def record_call(record: UsageRecord) -> None:
    """A call was settled: its metrics go out with the request's line (or now, outside one)."""
    if not enabled():
        return
    call = _current.get()
    if call is None or call.done:
        _emit(None, record)
    else:
        call.record = record


def _error_code(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return "UNKNOWN"
    code = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(code, dict):  # the OpenAI dialect: {"error": {"code": ...}}
        code = code.get("code")
    return code if isinstance(code, str) and code else "UNKNOWN"


class RequestMetrics:
    """Measures each HTTP request and prints its EMF line at the end (on Lambda only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The health check is the adapter's readiness probe and the load balancer's: not a call.
        if scope["type"] != "http" or not enabled() or scope["path"] == "/api/ai/health":
            await self.app(scope, receive, send)
            return
        call = Call(started=time.perf_counter())
        error_body = bytearray()

        async def measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                call.status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name == b"content-type" and value.startswith(b"text/event-stream"):
                        call.stream = True
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                # SSE comments (relayed upstream keep-alives) are not the answer's first byte.
                if body and call.first_byte_ms is None and not body.startswith(b":"):
                    call.first_byte_ms = (time.perf_counter() - call.started) * 1000
                if call.status is not None and call.status >= 400 and len(error_body) <= _ERROR_BODY_LIMIT:
                    error_body.extend(body)
            await send(message)

        token = _current.set(call)
        try:
            await self.app(scope, receive, measured)
        finally:
            _current.reset(token)
            call.done = True
            if call.status is not None and call.status >= 400:
                call.error_code = _error_code(bytes(error_body)) if len(error_body) <= _ERROR_BODY_LIMIT else "UNKNOWN"
            if call.record is not None or call.error_code is not None:
                _emit(call, call.record)
