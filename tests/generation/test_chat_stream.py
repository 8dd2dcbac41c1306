"""Streaming chat: unbuffered pass-through, events in order, mid-stream failures, caller hang-ups."""

from __future__ import annotations

import itertools
import time

from tests.support import SQL, Gateway, ServerThread, sim_chats, sse_events, wait_for

MODEL = "openai/gpt-4o-mini"
HELLO = [{"role": "user", "content": "Stream me a story"}]


def test_stream_events_order_usage_and_row(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    cid = gateway.enable(MODEL, systemPrompt="Admin prompt")
    with gateway.client.stream(
        "POST",
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "stream": True},
        headers={**gateway.user(sub="bob"), "x-sim-chunks": "6"},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        events = list(sse_events(r))
    chunks = [e["chunk"] for e in events if "chunk" in e]
    assert len(chunks) == 6
    sent = sim_chats(simulator.url)[-1]
    assert sent["body"]["stream"] is True and sent["body"]["stream_options"] == {"include_usage": True}
    assert sent["body"]["messages"][0] == {"role": "system", "content": "Admin prompt"}
    reported = sent["usage"]
    usage = {
        "promptTokens": reported["prompt_tokens"],
        "completionTokens": reported["completion_tokens"],
        "totalTokens": reported["total_tokens"],
    }
    kinds = [next(iter(e)) for e in events]
    assert kinds == ["chunk"] * 6 + ["tokenUsage", "done"]
    assert events[-2] == {"tokenUsage": usage}
    assert events[-1] == {"done": True, "tokenUsage": usage}
    # Same text as the non-streamed answer to the same request.
    plain = gateway.client.post(
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO},
        headers={**gateway.user(), "x-sim-chunks": "6"},
    ).json()
    assert "".join(chunks) == plain["text"]
    rows = wait_for(lambda: sql("SELECT * FROM ai.usage WHERE user_id = 'bob'"))
    assert len(rows) == 1
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (
        reported["prompt_tokens"],
        reported["completion_tokens"],
    )
    assert str(rows[0]["config_id"]) == cid


def test_each_chunk_reaches_the_client_before_the_next_is_sent(gateway: Gateway) -> None:
    """50 ms between upstream chunks: the client sees them 50 ms apart, not in one burst."""
    gateway.enable(MODEL)
    arrivals: list[float] = []
    with gateway.client.stream(
        "POST",
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "stream": True},
        headers={**gateway.user(), "x-sim-chunks": "8", "x-sim-chunk-delay-ms": "50"},
    ) as r:
        for event in sse_events(r):
            if "chunk" in event:
                arrivals.append(time.perf_counter())
    assert len(arrivals) == 8
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) > 0.025, gaps  # a buffering proxy would deliver them together
    assert arrivals[-1] - arrivals[0] > 0.3


def test_keepalive_comments_are_forwarded_during_long_waits(gateway: Gateway) -> None:
    gateway.enable(MODEL)
    lines = []
    with gateway.client.stream(
        "POST",
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "stream": True},
        headers={**gateway.user(), "x-sim-latency-ms": "700", "x-sim-keepalive-ms": "200"},
    ) as r:
        lines = list(r.iter_lines())
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert sum(1 for line in lines[:first_data] if line.startswith(":")) >= 3


def test_mid_stream_failure_ends_with_an_error_event(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL)
    with gateway.client.stream(
        "POST",
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "stream": True},
        headers={**gateway.user(), "x-sim-fail-after-chunks": "2"},
    ) as r:
        assert r.status_code == 200
        events = list(sse_events(r))
    assert [e for e in events if "chunk" in e] == events[:2]
    assert events[-1]["error"] is True and events[-1]["message"].startswith("Failed to stream response:")
    assert not any("done" in e for e in events)
    rows = wait_for(lambda: sql("SELECT * FROM ai.usage"))
    assert len(rows) == 1 and rows[0]["output_tokens"] > 0  # the two chunks produced were counted


def test_errors_before_the_stream_are_plain_http_errors(gateway: Gateway) -> None:
    r = gateway.client.post(
        "/api/ai/chat/completion", json={"model": MODEL, "messages": HELLO, "stream": True}, headers=gateway.user()
    )
    assert r.status_code == 400 and r.json()["error"] == "AI_INVALID_MODEL"
    gateway.enable(MODEL)
    r = gateway.client.post(
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "stream": True},
        headers={**gateway.user(), "x-sim-fail-status": "401"},
    )
    assert r.status_code == 401 and r.json()["error"] == "AI_INVALID_API_KEY"
    assert r.headers["content-type"].startswith("application/json")
    r = gateway.client.post(
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "stream": True},
        headers={"x-sim-chunks": "1"},
    )
    assert r.status_code == 401 and r.json()["error"] == "AUTH_INVALID_CREDENTIALS"


def test_client_disconnect_cancels_upstream_and_records_tokens(
    gateway: Gateway, simulator: ServerThread, sql: SQL
) -> None:
    gateway.enable(MODEL)
    got = 0
    with gateway.client.stream(
        "POST",
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": HELLO, "stream": True},
        headers={**gateway.user(sub="quitter"), "x-sim-chunks": "40", "x-sim-chunk-delay-ms": "50"},
    ) as r:
        for event in sse_events(r):
            if "chunk" in event:
                got += 1
                if got == 3:
                    break  # leaving the block closes the connection mid-stream
    entry = wait_for(lambda: next((e for e in sim_chats(simulator.url) if e["cancelled"]), None))
    assert entry is not None, "the upstream request was not cancelled"
    assert entry["chunks_sent"] < 40
    rows = wait_for(lambda: sql("SELECT * FROM ai.usage WHERE user_id = 'quitter'"))
    assert len(rows) == 1 and rows[0]["output_tokens"] >= 1 and rows[0]["input_tokens"] >= 1
