"""The response cache through the real chat routes (native and OpenAI dialects, plain and streamed)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from anthropic import Anthropic
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.support import SQL, Gateway, ServerThread, sim_chats, sse_events, wait_usage

MODEL = "openai/gpt-4o-mini"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me about caching answers"}]
CACHE = {"ttlSeconds": 600, "scope": "project"}
NATIVE = "/api/ai/chat/completion"
OPENAI = "/api/ai/v1/chat/completions"


def _chat(gw: Gateway, body: dict[str, Any], sub: str = "user-1", **headers: str) -> httpx.Response:
    return gw.client.post(
        NATIVE, json={"model": MODEL, "messages": HELLO, **body}, headers={**gw.user(sub=sub), **headers}
    )


def _stream(gw: Gateway, path: str, body: dict[str, Any], sub: str = "user-1") -> tuple[httpx.Headers, list[Any]]:
    with gw.client.stream(
        "POST", path, json={"model": MODEL, "messages": HELLO, "stream": True, **body}, headers=gw.user(sub=sub)
    ) as r:
        assert r.status_code == 200, r.read()
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
        return r.headers, lines


def test_repeat_is_a_hit_with_identical_content(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    cid = gateway.enable(MODEL, systemPrompt="Be brief.", cache=CACHE)
    first = _chat(gateway, {})
    assert first.status_code == 200 and first.headers["x-gateway-cache"] == "MISS"
    second = _chat(gateway, {}, sub="user-2")
    assert second.status_code == 200 and second.headers["x-gateway-cache"] == "HIT"
    assert second.json() == first.json()
    assert len(sim_chats(simulator.url)) == 1  # the hit never reached the upstream

    rows = wait_usage(sql, 2)
    live, hit = sorted(rows, key=lambda r: r["cached"])
    assert not live["cached"] and hit["cached"]
    assert (hit["input_tokens"], hit["output_tokens"]) == (live["input_tokens"], live["output_tokens"])
    assert float(hit["cost_usd"]) == 0 and float(hit["saved_usd"]) == pytest.approx(float(live["cost_usd"]))
    assert hit["user_id"] == "user-2" and str(hit["config_id"]) == cid and hit["key_source"] == "cache"
    assert live["saved_usd"] is None


def test_off_without_configuration_and_no_header(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    for _ in range(2):
        r = _chat(gateway, {})
        assert r.status_code == 200 and "x-gateway-cache" not in r.headers
    assert len(sim_chats(simulator.url)) == 2


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.1},
        {"maxTokens": 50},
        {"topP": 0.5},
        {"messages": [{"role": "user", "content": "Something else entirely"}]},
        {
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "toolChoice": "none",
        },
        {"webSearch": {"enabled": True}},
        {"thinking": True},
    ],
)
def test_changing_a_shaping_field_misses(gateway: Gateway, simulator: ServerThread, change: dict[str, Any]) -> None:
    gateway.enable(MODEL, cache=CACHE)
    gateway.enable(MODEL + ":thinking", cache=CACHE)
    assert _chat(gateway, {}).headers["x-gateway-cache"] == "MISS"
    assert _chat(gateway, change).headers["x-gateway-cache"] == "MISS"
    assert _chat(gateway, change).headers["x-gateway-cache"] == "HIT"
    assert len(sim_chats(simulator.url)) == 2


def test_admin_system_prompt_and_openai_fields_are_in_the_key(gateway: Gateway, simulator: ServerThread) -> None:
    cid = gateway.enable(MODEL, systemPrompt="First prompt.", cache=CACHE)
    client = OpenAI(base_url=gateway.url + "/api/ai/v1", api_key=gateway.token())
    first = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert first.headers["x-gateway-cache"] == "MISS"
    assert (
        client.chat.completions.with_raw_response.create(
            model=MODEL,
            messages=HELLO,
        ).headers["x-gateway-cache"]
        == "HIT"
    )
    fmt = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=HELLO,
        response_format={"type": "json_object"},
    )
    assert fmt.headers["x-gateway-cache"] == "MISS"
    seeded = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO, seed=7)
    assert seeded.headers["x-gateway-cache"] == "MISS"
    r = gateway.client.patch(
        f"/api/ai/configurations/{cid}", json={"systemPrompt": "Second prompt."}, headers=gateway.admin()
    )
    assert r.status_code == 200
    again = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert again.headers["x-gateway-cache"] == "MISS"
    assert len(sim_chats(simulator.url)) == 4


def test_openai_hit_parses_like_the_miss(gateway: Gateway) -> None:
    gateway.enable(MODEL, cache=CACHE)
    client = OpenAI(base_url=gateway.url + "/api/ai/v1", api_key=gateway.token())
    miss = client.chat.completions.create(model=MODEL, messages=HELLO)
    hit = client.chat.completions.create(model=MODEL, messages=HELLO)
    assert hit.choices[0].message.content == miss.choices[0].message.content
    assert hit.usage == miss.usage and hit.model == miss.model
    assert hit.choices[0].finish_reason == miss.choices[0].finish_reason


def test_user_scope_never_crosses_users(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL, cache={"ttlSeconds": 600, "scope": "user"})
    assert _chat(gateway, {}, sub="alice").headers["x-gateway-cache"] == "MISS"
    assert _chat(gateway, {}, sub="bob").headers["x-gateway-cache"] == "MISS"
    assert _chat(gateway, {}, sub="alice").headers["x-gateway-cache"] == "HIT"
    assert _chat(gateway, {}, sub="bob").headers["x-gateway-cache"] == "HIT"
    # Anon callers of the same app are apart too (their subject includes the address).
    anon = gateway.client.post(
        NATIVE,
        json={"model": MODEL, "messages": HELLO},
        headers={"Authorization": f"Bearer {gateway.token(role='anon', sub=None)}"},
    )
    assert anon.headers["x-gateway-cache"] == "MISS"
    assert len(sim_chats(simulator.url)) == 3


def test_project_scope_is_shared(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL, cache=CACHE)
    assert _chat(gateway, {}, sub="alice").headers["x-gateway-cache"] == "MISS"
    assert _chat(gateway, {}, sub="bob").headers["x-gateway-cache"] == "HIT"
    assert len(sim_chats(simulator.url)) == 1


def test_request_controls(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL, cache=CACHE)
    # no-store: neither read nor written
    assert _chat(gateway, {}, **{"Cache-Control": "no-store"}).headers["x-gateway-cache"] == "BYPASS"
    assert sql("SELECT count(*) AS n FROM ai.cache_entries")[0]["n"] == 0
    # body flag false: the same
    assert _chat(gateway, {"cache": False}).headers["x-gateway-cache"] == "BYPASS"
    assert sql("SELECT count(*) AS n FROM ai.cache_entries")[0]["n"] == 0
    assert _chat(gateway, {}).headers["x-gateway-cache"] == "MISS"
    assert _chat(gateway, {}).headers["x-gateway-cache"] == "HIT"
    # no-cache: skips the lookup, refreshes the entry
    assert _chat(gateway, {}, **{"Cache-Control": "no-cache"}).headers["x-gateway-cache"] == "BYPASS"
    assert _chat(gateway, {"cache": False}).headers["x-gateway-cache"] == "BYPASS"
    assert len(sim_chats(simulator.url)) == 5
    client = OpenAI(base_url=gateway.url + "/api/ai/v1", api_key=gateway.token())
    r = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=HELLO,
        extra_body={"cache": False},
    )
    assert r.headers["x-gateway-cache"] == "BYPASS"


def test_bad_cache_settings_are_refused(gateway: Gateway) -> None:
    base = {"inputModality": ["text"], "outputModality": ["text"], "modelId": MODEL}
    for bad in (
        {"ttlSeconds": 0},
        {"ttlSeconds": 60, "scope": "team"},
        {"ttlSeconds": 60, "extra": 1},
        {"scope": "user"},
    ):
        r = gateway.client.post("/api/ai/configurations", json={**base, "cache": bad}, headers=gateway.admin())
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "INVALID_INPUT"
    r = gateway.client.post(
        NATIVE, json={"model": MODEL, "messages": HELLO, "cache": "yes please"}, headers=gateway.user()
    )
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"


def test_tool_calls_and_errors_are_never_cached(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL, cache=CACHE)
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    for _ in range(2):
        r = _chat(gateway, {"tools": tools})
        assert r.status_code == 200 and r.json().get("tool_calls")
        assert r.headers["x-gateway-cache"] == "MISS"
    for _ in range(2):
        r = _chat(gateway, {"temperature": 0.3}, **{"x-sim-fail-status": "500", "x-sim-fail-times": "1"})
    assert sql("SELECT count(*) AS n FROM ai.cache_entries")[0]["n"] == 1  # only the answer after the retry
    failing = {"x-sim-fail-status": "400"}
    for _ in range(2):
        assert _chat(gateway, {"temperature": 0.4}, **failing).status_code >= 400
    assert sql("SELECT count(*) AS n FROM ai.cache_entries")[0]["n"] == 1


def test_partial_stream_is_not_cached(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL, cache=CACHE)
    with gateway.client.stream(
        "POST",
        NATIVE,
        json={"model": MODEL, "messages": HELLO, "stream": True},
        headers={**gateway.user(), "x-sim-fail-after-chunks": "2"},
    ) as r:
        events = list(sse_events(r))
    assert events[-1].get("error") is True
    wait_usage(sql, 1)
    assert sql("SELECT count(*) AS n FROM ai.cache_entries")[0]["n"] == 0


def test_streamed_hit_replays_chunks(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL, cache=CACHE)
    plain = _chat(gateway, {}).json()  # fills the entry, plain
    headers, lines = _stream(gateway, NATIVE, {})
    assert headers["x-gateway-cache"] == "HIT"
    events = [json.loads(line[6:]) for line in lines]
    chunks = [e["chunk"] for e in events if "chunk" in e]
    assert len(chunks) >= 2 and "".join(chunks) == plain["text"]
    assert events[-1]["done"] is True and events[-1]["tokenUsage"] == plain["usage"]
    # The OpenAI dialect replays the same answer as chunk frames ending in [DONE].
    headers, lines = _stream(gateway, OPENAI, {"stream_options": {"include_usage": True}})
    assert headers["x-gateway-cache"] == "HIT" and lines[-1] == "data: [DONE]"
    frames = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(f["choices"][0]["delta"].get("content") or "" for f in frames if f["choices"])
    assert text == plain["text"] and sum(1 for f in frames if f["choices"]) >= 3
    assert frames[-1]["usage"]["total_tokens"] == plain["usage"]["totalTokens"]
    assert len(sim_chats(simulator.url)) == 1
    rows = wait_usage(sql, 3)
    assert [r["cached"] for r in rows] == [False, True, True]


def test_streamed_miss_fills_the_cache_for_plain(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL, cache=CACHE)
    headers, lines = _stream(gateway, OPENAI, {})
    assert headers["x-gateway-cache"] == "MISS"
    client = OpenAI(base_url=gateway.url + "/api/ai/v1", api_key=gateway.token())
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert raw.headers["x-gateway-cache"] == "HIT"
    streamed = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in lines[:-1]
        if json.loads(line[6:])["choices"]
    )
    assert raw.parse().choices[0].message.content == streamed
    assert len(sim_chats(simulator.url)) == 1


def test_anthropic_messages_are_cached_too(gateway: Gateway, simulator: ServerThread) -> None:
    """Every door runs the chat flow: Anthropic Messages calls are cached too, plain and streamed."""
    gateway.enable(MODEL, cache=CACHE)
    client = Anthropic(base_url=gateway.url + "/api/ai", api_key=gateway.token(), max_retries=0, timeout=20)
    first = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=300, messages=[{"role": "user", "content": "Shared door"}]
    )
    assert first.headers["x-gateway-cache"] == "MISS"
    second = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=300, messages=[{"role": "user", "content": "Shared door"}]
    )
    assert second.headers["x-gateway-cache"] == "HIT"
    a, b = first.parse(), second.parse()
    assert a.content == b.content and a.usage.input_tokens == b.usage.input_tokens
    with client.messages.stream(
        model=MODEL, max_tokens=300, messages=[{"role": "user", "content": "Shared door"}]
    ) as stream:
        streamed = "".join(stream.text_stream)
    assert [block.text for block in a.content if block.type == "text"] == [streamed]
    assert len(sim_chats(simulator.url)) == 1


def test_responses_api_hits_plain_and_streamed(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL, cache=CACHE)
    client = OpenAI(base_url=gateway.url + "/api/ai/v1", api_key=gateway.token())
    first = client.responses.with_raw_response.create(model=MODEL, input="Responses through the cache")
    second = client.responses.with_raw_response.create(model=MODEL, input="Responses through the cache")
    assert (first.headers["x-gateway-cache"], second.headers["x-gateway-cache"]) == ("MISS", "HIT")
    text = first.parse().output_text
    assert second.parse().output_text == text and text
    deltas = [
        e.delta
        for e in client.responses.create(model=MODEL, input="Responses through the cache", stream=True)
        if e.type == "response.output_text.delta"
    ]
    assert len(deltas) >= 2 and "".join(deltas) == text
    assert len(sim_chats(simulator.url)) == 1


def test_turning_the_cache_off_again(gateway: Gateway, simulator: ServerThread) -> None:
    cid = gateway.enable(MODEL, cache=CACHE)
    assert _chat(gateway, {}).headers["x-gateway-cache"] == "MISS"
    r = gateway.client.patch(f"/api/ai/configurations/{cid}", json={"cache": None}, headers=gateway.admin())
    assert r.status_code == 200
    listed = gateway.client.get("/api/ai/configurations", headers=gateway.admin()).json()
    assert listed[0]["cache"] is None
    assert "x-gateway-cache" not in _chat(gateway, {}).headers
    assert len(sim_chats(simulator.url)) == 2
    r = gateway.client.patch(
        f"/api/ai/configurations/{cid}", json={"cache": {"ttlSeconds": 10**9}}, headers=gateway.admin()
    )
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"


def test_a_stream_the_caller_left_is_not_cached(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL, cache=CACHE)
    headers = {**gateway.user(), "x-sim-chunks": "10", "x-sim-chunk-delay-ms": "50"}
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    with gateway.client.stream("POST", NATIVE, json=body, headers=headers) as r:
        assert r.headers["x-gateway-cache"] == "MISS"
        next(sse_events(r))  # the first chunk, then hang up
    rows = wait_usage(sql, 1)
    assert len(rows) == 1 and not rows[0]["cached"]
    assert sql("SELECT count(*) AS n FROM ai.cache_entries")[0]["n"] == 0
