"""The simulator's Starlette app: OpenRouter's routes plus test-only ``/_sim`` control routes.

OpenRouter routes (base ``/api/v1``): ``POST /chat/completions``, ``POST /embeddings``,
``GET /models`` (``?output_modalities=`` filter), ``GET /models/user``, ``GET /embeddings/models``,
``GET /key`` and ``GET /auth/key``, ``GET /credits``, and the Batch API ``POST /batches`` and
``GET /batches/{id}`` (:mod:`.batches`). Auth is required on everything but the model
lists (see :mod:`.routing` for the key and model-id behaviours, :mod:`.controls` for the
``x-sim-*`` headers, :mod:`.usage` for the token/cost formula).

Control routes:

* ``GET /_sim/requests`` → ``{"requests": [entry, ...]}``, the last 200 requests to ``/api/v1``,
  oldest first. Entry: ``seq``, ``time``, ``method``, ``path``, ``query``, ``headers`` (dict,
  lower-cased names, ``authorization`` included), ``body`` (parsed JSON, ``null`` if not JSON;
  ``{"_omitted_bytes": N}`` for bodies over 16 MiB, so benchmarks cannot pile up gigabytes),
  ``status``, ``stream``, ``model`` (the model that served), ``usage`` (what was reported to the
  client, ``null`` if nothing was), ``cancelled`` (client went away mid-stream) and, for streams,
  ``chunks_sent``.
* ``POST /_sim/reset`` clears the log, the ``x-sim-fail-times`` counters and the running cost.
* ``GET /_sim/health`` → ``{"ok": true}``.

Request order for generation routes: auth (401) → JSON (400) → ``x-sim-*`` parsing → key billing
state (402/429) → validation and model routing (400/404/502) → simulated failure
(``x-sim-fail-status``) → latency → answer (or garbage / HTTP-200 error for non-stream).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .batches import SimBatch, create_batch, poll_batch
from .catalog import filter_models_json, provider_name
from .chat import generation_id, plan_chat, read_prompt
from .controls import Controls, parse_controls
from .embeddings import render_embeddings
from .errors import INVALID_JSON, USER_ID, SimError, error_body, provider_error, simple_error
from .render import render_response
from .routing import (
    DEFAULT_MODEL,
    check_billing,
    check_key,
    check_model_id,
    check_provider,
    route_model,
)
from .state import LOG_BODY_LIMIT, SimState
from .streaming import SSEStream

__all__ = ["create_app"]

_JSON = "application/json"
GARBAGE = b'{"id":"gen-garbage","object":"chat.completion","choices":[{"message":<html>Bad Gateway</html>'
_HEALTH = b'{"ok":true}'


def _json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers=headers, media_type=_JSON)


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None


class _Handlers:
    """Route endpoints sharing one :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.batches: dict[str, SimBatch] = {}

    async def _begin(self, request: Request) -> tuple[dict[str, Any], Any]:
        scope = request.scope
        raw = await request.body() if request.method == "POST" else b""
        body = _parse(raw)
        logged = body if len(raw) <= LOG_BODY_LIMIT else {"_omitted_bytes": len(raw)}
        entry = self.state.record(request.method, scope["path"], scope["query_string"], scope["headers"], logged)
        entry["stream"] = isinstance(body, dict) and body.get("stream") is True
        return entry, body

    def _fail(self, entry: dict[str, Any], exc: SimError) -> Response:
        entry["status"] = exc.status
        return _json(exc.body, exc.status, exc.headers)

    def _generation_prelude(self, request: Request, body: Any) -> tuple[dict[str, Any], Controls]:
        """Auth, JSON, controls and key state shared by chat and embeddings."""
        key = check_key(request.headers.get("authorization"))
        if not isinstance(body, dict):
            raise SimError(400, INVALID_JSON)
        controls = parse_controls(request.scope["headers"])
        check_billing(key)
        return body, controls

    def _maybe_fail(self, controls: Controls, model: str) -> None:
        if controls.fail_status is not None and self.state.should_fail(controls):
            raise provider_error(controls.fail_status, provider_name(model), model, controls.retry_after)

    async def chat(self, request: Request) -> Response:
        entry, body = await self._begin(request)
        try:
            body, controls = self._generation_prelude(request, body)
            model = check_model_id(body.get("model") or DEFAULT_MODEL)
            check_provider(body.get("provider"))
            prompt = read_prompt(body.get("messages"))
            served = route_model(model, body.get("models"), prompt.tokens)
            entry["model"] = served
            self._maybe_fail(controls, served)
            plan = plan_chat(body, prompt, served, controls)
        except SimError as exc:
            return self._fail(entry, exc)

        if body.get("stream") is True:
            return SSEStream(plan, controls, entry, self.state)
        if controls.latency_ms:
            await asyncio.sleep(controls.latency_ms / 1000)
        if controls.garbage:
            return _json(GARBAGE)
        if controls.error_200:
            meta = {"raw": "Simulated upstream error after routing", "provider_name": plan.provider}
            return _json(error_body(502, "Provider returned error", meta))
        self.state.report_usage(entry, plan.usage)
        return _json(render_response(plan), headers={"x-generation-id": plan.gen_id})

    async def embeddings(self, request: Request) -> Response:
        entry, body = await self._begin(request)
        try:
            body, controls = self._generation_prelude(request, body)
            model = check_model_id(body.get("model"))
            check_provider(body.get("provider"))
            served = route_model(model, None)
            entry["model"] = served
            self._maybe_fail(controls, served)
            gen_id = generation_id()
            payload, usage = render_embeddings(body, served, gen_id, controls.embedding_dims)
        except SimError as exc:
            return self._fail(entry, exc)
        if controls.latency_ms:
            await asyncio.sleep(controls.latency_ms / 1000)
        if controls.garbage:
            return _json(GARBAGE)
        self.state.report_usage(entry, usage)
        return _json(payload, headers={"x-generation-id": gen_id})

    async def models(self, request: Request) -> Response:
        await self._begin(request)
        return _json(filter_models_json(request.query_params.get("output_modalities")))

    async def embedding_models(self, request: Request) -> Response:
        await self._begin(request)
        return _json(filter_models_json("embeddings"))

    async def key(self, request: Request) -> Response:
        entry, _ = await self._begin(request)
        try:
            key = check_key(request.headers.get("authorization"))
        except SimError as exc:
            return self._fail(entry, exc)
        used = round(self.state.total_cost, 10)
        broke = "nocredit" in key
        data = {
            "label": f"{key[:10]}...{key[-3:]}" if len(key) > 13 else key,
            "limit": 1 if broke else None,
            "limit_remaining": 0 if broke else None,
            "limit_reset": None,
            "include_byok_in_limit": False,
            "usage": 1 if broke else used,
            "usage_daily": used,
            "usage_weekly": used,
            "usage_monthly": used,
            "byok_usage": 0,
            "byok_usage_daily": 0,
            "byok_usage_weekly": 0,
            "byok_usage_monthly": 0,
            "is_free_tier": False,
            "is_management_key": False,
            "is_provisioning_key": False,
            "expires_at": None,
            "creator_user_id": USER_ID,
            "rate_limit": {
                "requests": -1,
                "interval": "10s",
                "note": "This field is deprecated and safe to ignore.",
            },
        }
        return _json(orjson.dumps({"data": data}))

    async def credits(self, request: Request) -> Response:
        entry, _ = await self._begin(request)
        try:
            key = check_key(request.headers.get("authorization"))
        except SimError as exc:
            return self._fail(entry, exc)
        if "noaccount" in key:  # OpenRouter answers the account balance to provisioning keys only
            return self._fail(entry, SimError(403, simple_error(403, "Only provisioning keys can fetch credits")))
        total = 0.0 if "nocredit" in key else 100.0
        return _json(orjson.dumps({"data": {"total_credits": total, "total_usage": round(self.state.total_cost, 10)}}))

    async def create_batch(self, request: Request) -> Response:
        entry, body = await self._begin(request)
        try:
            check_key(request.headers.get("authorization"))
            controls = parse_controls(request.scope["headers"])
            self._maybe_fail(controls, str(body.get("model", "")) if isinstance(body, dict) else "")
            batch = create_batch(body, dict(request.headers))
        except SimError as exc:
            return self._fail(entry, exc)
        self.batches[batch.id] = batch
        entry["status"] = 202
        return _json(orjson.dumps(batch.view()), 202)

    async def get_batch(self, request: Request) -> Response:
        entry, _ = await self._begin(request)
        try:
            check_key(request.headers.get("authorization"))
            view = poll_batch(self.batches, request.path_params["batch_id"])
        except SimError as exc:
            return self._fail(entry, exc)
        return _json(orjson.dumps(view))

    async def sim_requests(self, request: Request) -> Response:
        return _json(orjson.dumps({"requests": list(self.state.log)}))

    async def sim_reset(self, request: Request) -> Response:
        self.state.reset()
        return _json(_HEALTH)

    async def sim_health(self, request: Request) -> Response:
        return _json(_HEALTH)


def create_app() -> Starlette:
    """A fresh simulator app with its own request log and counters (``app.state.sim``)."""
    state = SimState()
    h = _Handlers(state)
    routes = [
        Route("/api/v1/chat/completions", h.chat, methods=["POST"]),
        Route("/api/v1/embeddings", h.embeddings, methods=["POST"]),
        Route("/api/v1/models", h.models, methods=["GET"]),
        Route("/api/v1/models/user", h.models, methods=["GET"]),
        Route("/api/v1/embeddings/models", h.embedding_models, methods=["GET"]),
        Route("/api/v1/key", h.key, methods=["GET"]),
        Route("/api/v1/auth/key", h.key, methods=["GET"]),
        Route("/api/v1/credits", h.credits, methods=["GET"]),
        Route("/api/v1/batches", h.create_batch, methods=["POST"]),
        Route("/api/v1/batches/{batch_id}", h.get_batch, methods=["GET"]),
        Route("/_sim/requests", h.sim_requests, methods=["GET"]),
        Route("/_sim/reset", h.sim_reset, methods=["POST"]),
        Route("/_sim/health", h.sim_health, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.sim = state
    return app
