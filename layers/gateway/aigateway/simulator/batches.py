"""OpenRouter's Batch API, simulated: ``POST /api/v1/batches`` and ``GET /api/v1/batches/{id}``.

The wire format, as OpenRouter documents it:

* Submit: a JSON body with ``endpoint`` (here ``/v1/chat/completions``), ``model`` (one model per
  batch; a request body that names a model must name the same one), optional
  ``completion_window`` (only ``"24h"``) and the inline ``requests`` array of ``{"custom_id",
  "body"}``. ``endpoint`` and ``model`` must come before ``requests`` (the API stream-parses the
  body; ``requests`` first is a 400). Answer: 202 with the batch object, ``status: "validating"``.
* Poll: the batch object ``{"id", "object": "batch", "endpoint", "model", "completion_window",
  "status", "created_at", "finalized_at", "request_counts": {"total", "completed", "failed"},
  "results", "error", "usage"}``. ``results`` is null until the batch is terminal (``completed``,
  ``failed``, ``expired``, ``cancelled``); then it holds one line per request: ``{"id",
  "custom_id", "response": {"status_code", "request_id", "body"} | null, "error": {"message",
  "type", "param"} | null}``, exactly one of ``response`` and ``error`` set.

What the simulator decides: the answers are the ones ``/chat/completions`` would give (the same
deterministic plan) at half the price (``usage.cost`` halved: the batch discount). A batch moves
``validating`` → ``in_progress`` at its first poll and is ``completed`` at poll number
``x-sim-batch-polls`` (a header of the submit request, default 2). A request whose model is
unknown fails alone with an ``error`` line. ``x-sim-batch-fail: 1`` on the submit makes the whole
batch end ``failed`` with ``error.message``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from .chat import plan_chat, read_prompt
from .controls import DEFAULT_CONTROLS
from .errors import INVALID_JSON, SimError, simple_error
from .render import render_response
from .routing import check_model_id, route_model

__all__ = ["SimBatch", "create_batch", "poll_batch"]

ENDPOINTS = ("/v1/chat/completions",)


@dataclass
class SimBatch:
    id: str
    model: str
    requests: list[dict[str, Any]]
    polls_to_finish: int
    fail: bool
    created_at: int = field(default_factory=lambda: int(time.time()))
    polls: int = 0
    results: list[dict[str, Any]] | None = None
    usage: dict[str, int] | None = None

    def view(self) -> dict[str, Any]:
        if self.polls == 0:
            status = "validating"
        elif self.polls < self.polls_to_finish:
            status = "in_progress"
        else:
            status = "failed" if self.fail else "completed"
        terminal = status in ("completed", "failed")
        if terminal and self.results is None and not self.fail:
            self.results, self.usage = _answer(self)
        ok = sum(1 for r in self.results or [] if r["response"] is not None)
        failed = len(self.requests) if self.fail else sum(1 for r in self.results or [] if r["error"] is not None)
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "model": self.model,
            "completion_window": "24h",
            "status": status,
            "created_at": self.created_at,
            "finalized_at": int(time.time()) if terminal else None,
            "request_counts": {"total": len(self.requests), "completed": ok, "failed": failed},
            "results": (self.results or []) if terminal else None,
            "error": {"message": "The provider could not run this batch."} if self.fail and terminal else None,
            "usage": self.usage,
        }


def _bad(message: str) -> SimError:
    return SimError(400, simple_error(400, message))


def create_batch(body: Any, headers: dict[str, str]) -> SimBatch:
    """Validate a submit body (see the module docstring) into a batch; SimError 400 otherwise."""
    if not isinstance(body, dict):
        raise SimError(400, INVALID_JSON)
    keys = list(body)
    if "requests" in keys and any(k in keys[keys.index("requests") :] for k in ("endpoint", "model")):
        raise _bad("endpoint and model must come before requests")
    if body.get("endpoint") not in ENDPOINTS:
        raise _bad(f"endpoint must be one of {', '.join(ENDPOINTS)}")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model is required")
    if body.get("completion_window", "24h") != "24h":
        raise _bad("the only supported completion_window is 24h")
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise _bad("requests must be a non-empty array")
    seen: set[str] = set()
    for r in requests:
        cid = r.get("custom_id") if isinstance(r, dict) else None
        if not isinstance(cid, str) or cid in seen or not isinstance(r.get("body"), dict):
            raise _bad("each request needs a unique custom_id and a body")
        if r["body"].get("model", model) != model:
            raise _bad(f"request {cid}: its model must match the batch model {model}")
        seen.add(cid)
    polls = int(headers.get("x-sim-batch-polls") or 2)
    return SimBatch(
        "batch_or_" + secrets.token_hex(8), model, requests, max(1, polls), headers.get("x-sim-batch-fail") == "1"
    )


def _answer(batch: SimBatch) -> tuple[list[dict[str, Any]], dict[str, int]]:
    results: list[dict[str, Any]] = []
    prompt_total = completion_total = 0
    for n, r in enumerate(batch.requests):
        line_id = f"{batch.id}-{n}"
        body = {**r["body"], "model": batch.model}
        try:
            served = route_model(check_model_id(batch.model), body.get("models"), 0)
            prompt = read_prompt(body.get("messages"))
            answer = orjson.loads(render_response(plan_chat(body, prompt, served, DEFAULT_CONTROLS)))
        except SimError as exc:
            message = (orjson.loads(exc.body).get("error") or {}).get("message", "failed")
            error = {"message": message, "type": "invalid_request_error", "param": None}
            results.append({"id": line_id, "custom_id": r["custom_id"], "response": None, "error": error})
            continue
        usage = answer["usage"]
        usage["cost"] = round(usage["cost"] / 2, 10)  # the batch discount
        prompt_total += usage["prompt_tokens"]
        completion_total += usage["completion_tokens"]
        response = {"status_code": 200, "request_id": f"req-{line_id}", "body": answer}
        results.append({"id": line_id, "custom_id": r["custom_id"], "response": response, "error": None})
    usage_total = {
        "prompt_tokens": prompt_total,
        "completion_tokens": completion_total,
        "total_tokens": prompt_total + completion_total,
    }
    return results, usage_total


def poll_batch(batches: dict[str, SimBatch], batch_id: str) -> dict[str, Any]:
    batch = batches.get(batch_id)
    if batch is None:
        raise SimError(404, simple_error(404, f"Batch {batch_id} not found"))
    batch.polls += 1
    return batch.view()
