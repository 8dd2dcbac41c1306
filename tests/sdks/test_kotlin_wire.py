"""The Kotlin SDK (insforge-kotlin 0.1.0) on the wire: its requests replayed, its answers decoded as it does.

What the SDK sends (docs/clients.md): `Authorization: Bearer <user token, else the access-token
provider, else the anon key>`, `User-Agent: InsForge-Kotlin/<version>` and
`Content-Type: application/json` on every request (GETs too); bodies are kotlinx.serialization
without defaults (`stream` only when true, unset options omitted). Its AI base is
`<baseURL>/api/ai`.

It decodes 200/201/204 bodies with a lenient `Json` that ignores unknown keys, and anything else
as `ErrorResponse` with the default, strict `Json`; stream frames are strict too, each one decoded
alone and dropped silently when it does not fit `StreamChunk`. The models below mirror
src/main/kotlin/dev/insforge/ai/models/AIModels.kt (`T? = null` is optional, everything else
required).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.sdks.decoding import BOOL, INT, STRING, Arr, Obj, assert_decodes, decode, opt, req
from tests.support import SQL, Gateway, ServerThread, sim_chats, sim_reset, wait_usage

CHAT = "openai/gpt-4o-mini"
IMAGE = "google/gemini-2.5-flash-image-preview"
AGENT = "InsForge-Kotlin/0.1.0-SNAPSHOT"

TOKEN_USAGE = Obj({"promptTokens": req(INT), "completionTokens": req(INT), "totalTokens": req(INT)})
CHAT_RESPONSE = Obj(
    {
        "success": req(BOOL),
        "content": req(STRING),
        "metadata": req(Obj({"model": req(STRING), "usage": req(TOKEN_USAGE)})),
    }
)
STREAM_CHUNK = Obj(
    {"choices": req(Arr(Obj({"delta": req(Obj({"content": opt(STRING)}, strict=True))}, strict=True)))},
    strict=True,
)
IMAGE_RESPONSE = Obj(
    {
        "model": req(STRING),
        "images": req(Arr(Obj({"type": req(STRING), "image_url": req(Obj({"url": req(STRING)}))}))),
        "text": opt(STRING),
        "count": req(INT),
        "metadata": req(Obj({"model": req(STRING), "revisedPrompt": opt(STRING), "usage": req(TOKEN_USAGE)})),
        "nextActions": req(STRING),
    }
)
AI_MODEL = Obj(
    {
        "id": req(STRING),
        "modelId": req(STRING),
        "provider": req(STRING),
        "inputModality": req(Arr(STRING)),
        "outputModality": req(Arr(STRING)),
        "priceLevel": req(INT),
    }
)
USAGE_STATS = Obj(
    {
        "totalInputTokens": req(INT),
        "totalOutputTokens": req(INT),
        "totalTokens": req(INT),
        "totalImageCount": req(INT),
        "totalRequests": req(INT),
    }
)
CONFIGURATION = Obj(
    {
        "id": req(STRING),
        "inputModality": opt(Arr(STRING)),
        "outputModality": opt(Arr(STRING)),
        "provider": req(STRING),
        "modelId": req(STRING),
        "systemPrompt": opt(STRING),
        "usageStats": opt(USAGE_STATS),
    }
)
CREATED = Obj({"id": req(STRING), "message": req(STRING)})
MESSAGE = Obj({"message": req(STRING)})
USAGE_RECORD = Obj(
    {
        "id": req(STRING),
        "configId": req(STRING),
        "inputTokens": req(INT),
        "outputTokens": req(INT),
        "imageCount": opt(INT),
        "imageResolution": opt(STRING),
        "createdAt": req(STRING),
        "modelId": req(STRING),
        "model": opt(STRING),
        "provider": opt(STRING),
        "inputModality": opt(Arr(STRING)),
        "outputModality": opt(Arr(STRING)),
    }
)
USAGE_RECORDS = Obj({"records": req(Arr(USAGE_RECORD)), "total": req(INT)})
ERROR_RESPONSE = Obj(
    {"error": req(STRING), "message": req(STRING), "statusCode": req(INT), "nextActions": opt(STRING)}, strict=True
)
OK_STATUSES = (200, 201, 204)  # `handleResponse`: anything else is decoded as an error


class KotlinAI:
    """The requests `client.ai.*` makes, each answer checked as `handleResponse` would decode it."""

    def __init__(self, gw: Gateway, token: str) -> None:
        self.http = gw.client
        self.headers = {"Authorization": f"Bearer {token}", "User-Agent": AGENT, "Content-Type": "application/json"}

    def call(self, method: str, path: str, model: Any, body: Any = None, **params: str) -> Any:
        r = self.http.request(
            method,
            f"/api/ai/{path}",
            headers=self.headers,
            content=None if body is None else json.dumps(body),
            params=params or None,
        )
        if r.status_code not in OK_STATUSES:
            raise KotlinHttpError(r)
        value = r.json()
        assert_decodes(value, model)
        return value

    def chat_completion(self, content: str, **options: Any) -> Any:
        body = {"model": CHAT, "messages": [{"role": "user", "content": content}], **options}
        return self.call("POST", "chat/completion", CHAT_RESPONSE, body)

    def chat_completion_stream(self, content: str, model: str = CHAT, **extra: str) -> list[str]:
        """`chatCompletionStream`: every `data: ` line but `[DONE]` decoded strictly; what fails is dropped."""
        body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": True}
        emitted: list[str] = []
        with self.http.stream(
            "POST", "/api/ai/chat/completion", headers=self.headers | extra, content=json.dumps(body)
        ) as r:
            for line in r.iter_lines():
                if not line.startswith("data: ") or line[6:] == "[DONE]":
                    continue
                try:
                    chunk = json.loads(line[6:])
                except ValueError:
                    continue
                if decode(chunk, STREAM_CHUNK):
                    continue
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content") is not None:
                    emitted.append(chunk["choices"][0]["delta"]["content"])
        return emitted


class KotlinHttpError(Exception):
    """`InsforgeHttpException` from `handleError`: the strict `ErrorResponse`, else UNKNOWN_ERROR."""

    def __init__(self, r: httpx.Response) -> None:
        try:
            body = r.json()
        except ValueError:
            body = None
        if body is None or decode(body, ERROR_RESPONSE):
            self.status, self.error, self.message = r.status_code, "UNKNOWN_ERROR", r.text
        else:
            self.status, self.error, self.message = body["statusCode"], body["error"], body["message"]
        super().__init__(f"{self.status} {self.error}: {self.message}")


@pytest.fixture
def admin(gateway: Gateway) -> KotlinAI:
    return KotlinAI(gateway, gateway.admin_key)


@pytest.fixture
def user(gateway: Gateway) -> KotlinAI:
    return KotlinAI(gateway, gateway.token(sub="kotlin-user"))


def test_admin_configuration_calls(gateway: Gateway, admin: KotlinAI) -> None:
    created = admin.call(
        "POST",
        "configurations",
        CREATED,
        {"inputModality": ["text"], "outputModality": ["text"], "provider": "openrouter", "modelId": CHAT},
    )
    admin.call(
        "POST",
        "configurations",
        CREATED,
        {
            "inputModality": ["text"],
            "outputModality": ["image", "text"],
            "provider": "openrouter",
            "modelId": IMAGE,
            "systemPrompt": "Flat colours.",
        },
    )
    admin.call("PATCH", f"configurations/{created['id']}", MESSAGE, {"systemPrompt": "Be terse."})
    configs = admin.call("GET", "configurations", Arr(CONFIGURATION))
    assert {c["modelId"]: c["systemPrompt"] for c in configs} == {CHAT: "Be terse.", IMAGE: "Flat colours."}
    admin.call("DELETE", f"configurations/{created['id']}", MESSAGE)
    assert [c["modelId"] for c in admin.call("GET", "configurations", Arr(CONFIGURATION))] == [IMAGE]


def test_admin_usage_calls(gateway: Gateway, admin: KotlinAI, user: KotlinAI, sql: SQL) -> None:
    config_id = gateway.enable(CHAT)
    user.chat_completion("hi")
    user.chat_completion("hi again")
    wait_usage(sql, 2)
    summary = admin.call("GET", "usage/summary", USAGE_STATS)
    assert summary["totalRequests"] == 2
    assert admin.call("GET", "usage/summary", USAGE_STATS, configId=config_id)["totalRequests"] == 2
    page = admin.call("GET", "usage", USAGE_RECORDS, limit="50", offset="0")
    assert page["total"] == 2 and all(r["configId"] == config_id and r["modelId"] == CHAT for r in page["records"])
    window = admin.call(
        "GET", "usage", USAGE_RECORDS, startDate="2020-01-01", endDate="2999-01-01", limit="1", offset="1"
    )
    assert window["total"] == 2 and len(window["records"]) == 1


def test_list_models(admin: KotlinAI) -> None:
    models = admin.call("GET", "models", Arr(AI_MODEL))
    assert CHAT in [m["id"] for m in models] and all(0 <= m["priceLevel"] <= 3 for m in models)


def test_chat_plain(gateway: Gateway, user: KotlinAI) -> None:
    gateway.enable(CHAT)
    res = user.chat_completion("Say hi", temperature=0.2, maxTokens=64)
    assert res["success"] is True and res["content"] and res["metadata"]["usage"]["totalTokens"] > 0


def test_chat_stream_emits_every_delta(gateway: Gateway, user: KotlinAI) -> None:
    gateway.enable(CHAT)
    plain = user.chat_completion("Count")["content"]
    emitted = user.chat_completion_stream("Count")
    assert "".join(emitted) == plain and len(emitted) >= 5


def test_chat_stream_keepalives_and_a_cut_stream(gateway: Gateway, user: KotlinAI) -> None:
    """Keep-alive comments are skipped; a stream cut after two deltas just ends (the flow has no
    error channel for it), with the deltas that arrived."""
    gateway.enable(CHAT)
    assert user.chat_completion_stream("Count", **{"x-sim-latency-ms": "300", "x-sim-keepalive-ms": "100"})
    assert len(user.chat_completion_stream("Count", **{"x-sim-fail-after-chunks": "2"})) == 2


def test_images(gateway: Gateway, user: KotlinAI) -> None:
    gateway.enable(IMAGE, outputModality=["image", "text"])
    res = user.call("POST", "image/generation", IMAGE_RESPONSE, {"model": IMAGE, "prompt": "A watercolor fox"})
    assert res["images"][0]["image_url"]["url"].startswith("data:image/png;base64,") and res["count"] == 1


def test_errors_decode_strictly(gateway: Gateway, user: KotlinAI, admin: KotlinAI) -> None:
    with pytest.raises(KotlinHttpError) as caught:
        user.chat_completion("hi")  # not enabled
    assert (caught.value.status, caught.value.error) == (400, "AI_INVALID_MODEL")
    with pytest.raises(KotlinHttpError) as caught:
        user.call("GET", "configurations", Arr(CONFIGURATION))
    assert (caught.value.status, caught.value.error) == (403, "AUTH_UNAUTHORIZED")
    with pytest.raises(KotlinHttpError) as caught:
        admin.call("DELETE", "configurations/00000000-0000-0000-0000-000000000000", MESSAGE)
    assert (caught.value.status, caught.value.error) == (404, "NOT_FOUND")


def test_request_bodies_reach_the_upstream_as_sent(gateway: Gateway, user: KotlinAI, simulator: ServerThread) -> None:
    gateway.enable(CHAT, systemPrompt="Admin prompt.")
    sim_reset(simulator.url)
    user.chat_completion("hi", topP=0.5, systemPrompt="Ignored: the admin's prompt is the one applied.")
    [sent] = [e["body"] for e in sim_chats(simulator.url)]
    assert sent["messages"] == [{"role": "system", "content": "Admin prompt."}, {"role": "user", "content": "hi"}]
    assert sent["top_p"] == 0.5
