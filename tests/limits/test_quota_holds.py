"""Quotas reserved at admission, through the real chat route: concurrency never multiplies a quota.

Each admitted call holds its worst case (prompt estimate + maxTokens) in the admission statement;
settling replaces the hold with the actual use, a failure releases it. So however many calls
arrive together, the counted total passes the quota by at most one call's actual use.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support import SQL, Gateway, MakeGateway, sse_events, wait_usage

MODEL = "openai/gpt-4o-mini"
MAX_TOKENS = 10


@pytest.fixture
def gw(make_gateway: MakeGateway) -> Gateway:
    gw = make_gateway(db_pool_size=8)
    gw.enable(MODEL)
    return gw


def _limits(gw: Gateway, **body: Any) -> None:
    r = gw.client.put("/api/ai/limits", json=body, headers=gw.admin())
    assert r.status_code == 200, r.text


async def _fire(gw: Gateway, headers: list[dict[str, str]], body: dict[str, Any]) -> list[httpx.Response]:
    """All requests at once; each answer read to its end (streams included)."""
    sim = {"x-sim-latency-ms": "150", "x-sim-chunks": str(MAX_TOKENS)}  # calls overlap in flight
    async with httpx.AsyncClient(base_url=gw.url, timeout=60) as client:

        async def one(h: dict[str, str]) -> httpx.Response:
            r = await client.post("/api/ai/chat/completion", json=body, headers={**h, **sim})
            await r.aread()
            return r

        return await asyncio.gather(*(one(h) for h in headers))


def _counted(sql: SQL, scope: str) -> int:
    rows = sql(
        "SELECT COALESCE(SUM(tokens), 0) AS t FROM ai.quota_counters WHERE scope = %s AND period = 'day'", (scope,)
    )
    return int(rows[0]["t"])


def _largest_call(sql: SQL) -> int:
    rows = sql("SELECT COALESCE(MAX(input_tokens + output_tokens), 0) AS t FROM ai.usage")
    return int(rows[0]["t"])


BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "maxTokens": MAX_TOKENS}


@pytest.mark.parametrize("scope", ["perUser", "perProject"])
def test_fifty_concurrent_calls_pass_a_token_quota_by_at_most_one_call(gw: Gateway, sql: SQL, scope: str) -> None:
    quota = 50  # a few calls' worth (each holds 4 + 10 = 14 tokens, uses about 15)
    _limits(gw, **{scope: {"tokensPerDay": quota}})
    headers = [gw.user(sub="one" if scope == "perUser" else f"user-{i}") for i in range(50)]
    responses = asyncio.run(_fire(gw, headers, BODY))

    codes = [r.status_code for r in responses]
    admitted = codes.count(200)
    assert set(codes) <= {200, 402} and codes.count(402) == 50 - admitted, codes
    for r in responses:
        if r.status_code == 402:
            assert r.json()["error"] == "QUOTA_EXCEEDED"
    messages = {r.json()["message"].split(":")[1].split("(")[0].strip() for r in responses if r.status_code == 402}
    assert any(m.startswith("what is left of") for m in messages), messages  # refused while others ran
    counted = _counted(sql, "user" if scope == "perUser" else "project")
    usage_total = sql("SELECT COALESCE(SUM(input_tokens + output_tokens), 0) AS t FROM ai.usage")[0]["t"]
    assert counted == usage_total  # every admitted answer counted, nothing else
    assert 1 <= admitted <= 4, codes  # 50 tokens of quota, 14 held per call in flight
    assert counted <= quota + _largest_call(sql), (counted, admitted)
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0  # every hold settled


def test_twenty_concurrent_streams_pass_a_quota_by_at_most_one_call_and_all_finish(gw: Gateway, sql: SQL) -> None:
    quota = 30  # about two calls' worth
    _limits(gw, perUser={"tokensPerDay": quota})
    responses = asyncio.run(_fire(gw, [gw.user(sub="streamer")] * 20, {**BODY, "stream": True}))

    admitted = [r for r in responses if r.status_code == 200]
    assert len(admitted) + sum(r.status_code == 402 for r in responses) == 20
    assert 1 <= len(admitted) <= 3
    for r in admitted:  # a stream that crosses the quota still finishes
        events = list(sse_events(r))
        assert events and events[-1].get("done") is True, events[-3:]
    counted = _counted(sql, "user")
    assert counted <= quota + _largest_call(sql)
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0


def test_a_call_that_fails_before_answering_releases_its_hold(gw: Gateway, sql: SQL) -> None:
    """With 20 tokens of quota a held call (14) leaves no room for a second one while it runs;
    failed calls must give theirs back, or the quota would look used up by calls that used nothing."""
    _limits(gw, perUser={"tokensPerDay": 20})
    u = gw.user(sub="unlucky")
    for stream in (False, True):
        for _ in range(3):
            r = gw.client.post(
                "/api/ai/chat/completion", json={**BODY, "stream": stream}, headers={**u, "x-sim-fail-status": "500"}
            )
            assert r.status_code == 502, r.text
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0
    assert _counted(sql, "user") == 0
    r = gw.client.post("/api/ai/chat/completion", json=BODY, headers=u)
    assert r.status_code == 200, r.text
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0


def test_a_stream_cut_before_its_first_token_releases_its_hold(gw: Gateway, sql: SQL) -> None:
    _limits(gw, perUser={"tokensPerDay": 20})
    u = gw.user(sub="cut")
    headers = {**u, "x-sim-fail-after-chunks": "0"}
    with gw.client.stream("POST", "/api/ai/chat/completion", json={**BODY, "stream": True}, headers=headers) as r:
        assert r.status_code == 200
        r.read()
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0
    assert gw.client.post("/api/ai/chat/completion", json=BODY, headers=u).status_code == 200


def test_a_spend_quota_holds_the_price_of_the_worst_case(make_gateway: MakeGateway, sql: SQL) -> None:
    """With the model's price known to the process (the catalog was fetched), a call under a spend
    quota holds its worst case's price: 50 concurrent calls pass the quota by at most one call."""
    gw = make_gateway(db_pool_size=8, models_cache_ttl_s=300.0)
    gw.enable(MODEL)
    assert gw.client.get("/api/ai/models", headers=gw.admin()).status_code == 200  # prices now known
    quota = 0.00002  # about three calls' worth at the catalog price (each holds ~6.75e-6 USD)
    _limits(gw, perUser={"spendPerMonthUsd": quota})
    responses = asyncio.run(_fire(gw, [gw.user(sub="spender")] * 50, BODY))

    codes = [r.status_code for r in responses]
    # At most 4 in flight at once (4 holds pass the quota); a settled call frees the difference
    # between its hold and its cost, so one or two more may start later.
    assert set(codes) <= {200, 402} and 1 <= codes.count(200) <= 6, codes
    rows = sql("SELECT COALESCE(SUM(cost_usd), 0) AS spent, COALESCE(MAX(cost_usd), 0) AS largest FROM ai.usage")
    spent, largest = float(rows[0]["spent"]), float(rows[0]["largest"])
    counted = sql("SELECT spend_usd FROM ai.quota_counters WHERE scope = 'user' AND period = 'month'")
    assert float(counted[0]["spend_usd"]) == pytest.approx(spent)
    assert spent <= quota + largest, (spent, codes.count(200))
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0


def test_failed_embeddings_and_image_calls_release_their_holds(gw: Gateway, sql: SQL) -> None:
    embed, image = "openai/text-embedding-3-small", "google/gemini-2.5-flash-image-preview"
    gw.enable(embed, inputModality=["text"], outputModality=["embeddings"])
    gw.enable(image, inputModality=["text", "image"], outputModality=["image", "text"])
    _limits(gw, perUser={"tokensPerMonth": 10**9})
    u = {**gw.user(sub="failing"), "x-sim-fail-status": "500"}
    r = gw.client.post("/api/ai/embeddings", json={"model": embed, "input": ["a", "b"]}, headers=u)
    assert r.status_code == 502, r.text
    r = gw.client.post("/api/ai/image/generation", json={"model": image, "prompt": "a fox", "numImages": 2}, headers=u)
    assert r.status_code == 502, r.text
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0
    ok = gw.user(sub="fine")
    assert gw.client.post("/api/ai/embeddings", json={"model": embed, "input": "hello"}, headers=ok).status_code == 200
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0  # settled
    rows = wait_usage(sql, 1)
    assert _counted(sql, "user") == sum((r["input_tokens"] or 0) + (r["output_tokens"] or 0) for r in rows)
