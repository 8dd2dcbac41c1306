"""The same chat through each door — native, OpenAI chat completions, OpenAI Responses, Anthropic
Messages — as the same user: one usage row each, and the rows, the upstream requests and what each
call spent of the rate limit and the quotas all agree.

The doors differ only in their wire shapes; this is the test that they are one flow underneath.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from tests.support import SQL, Gateway, ServerThread, sim_chats, wait_usage

MODEL = "openai/gpt-4o-mini"
PROMPT = "Name three rivers in France"
MAX_TOKENS = 64
USER = "door-user"

DOORS: dict[str, tuple[str, dict[str, Any]]] = {
    "native": (
        "/api/ai/chat/completion",
        {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "maxTokens": MAX_TOKENS},
    ),
    "openai": (
        "/api/ai/v1/chat/completions",
        {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_completion_tokens": MAX_TOKENS},
    ),
    "responses": (
        "/api/ai/v1/responses",
        {"model": MODEL, "input": PROMPT, "max_output_tokens": MAX_TOKENS, "store": False},
    ),
    "anthropic": (
        "/api/ai/v1/messages",
        {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": MAX_TOKENS},
    ),
}
# What a row says about the call; the rest (id, request id, latency, time) differs per call by nature.
ROW_FIELDS = (
    "config_id",
    "model_id",
    "kind",
    "input_tokens",
    "output_tokens",
    "image_count",
    "user_id",
    "cost_usd",
    "key_source",
    "cached",
    "saved_usd",
    "batch_id",
    "quota_charged",
)


def spent(sql: SQL) -> dict[str, Any]:
    """The user's and the project's rate-limit hits and day/month quota counters, all summed."""
    rate = sql("SELECT scope, COALESCE(SUM(hits), 0) AS n FROM ai.rate_counters GROUP BY scope")
    quota = sql(
        "SELECT scope, period, SUM(tokens) AS tokens, SUM(spend_usd) AS spend FROM ai.quota_counters"
        " GROUP BY scope, period"
    )
    holds = sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"]
    return {
        "hits": {r["scope"]: int(r["n"]) for r in rate},
        "quota": {(r["scope"], r["period"]): (int(r["tokens"]), Decimal(r["spend"])) for r in quota},
        "holds": holds,
    }


def delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    hits = {k: v - before["hits"].get(k, 0) for k, v in after["hits"].items()}
    zero = (0, Decimal(0))
    quota = {
        k: (tokens - before["quota"].get(k, zero)[0], spend - before["quota"].get(k, zero)[1])
        for k, (tokens, spend) in after["quota"].items()
    }
    return {"hits": hits, "quota": quota, "holds": after["holds"] - before["holds"]}


def test_each_door_records_and_spends_the_same(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL)
    generous = {"requestsPerMinute": 1000, "tokensPerDay": 10**9, "tokensPerMonth": 10**9, "spendPerMonthUsd": 1000}
    r = gateway.client.put(
        "/api/ai/limits", json={"perUser": generous, "perProject": generous}, headers=gateway.admin()
    )
    assert r.status_code == 200, r.text
    headers = gateway.user(sub=USER)

    rows: dict[str, dict[str, Any]] = {}
    spends: dict[str, dict[str, Any]] = {}
    remaining: dict[str, int] = {}
    upstream: dict[str, dict[str, Any]] = {}
    for n, (door, (path, body)) in enumerate(DOORS.items(), start=1):
        before = spent(sql)
        answer = httpx.post(gateway.url + path, json=body, headers=headers, timeout=20)
        assert answer.status_code == 200, (door, answer.text)
        [row] = [r for r in wait_usage(sql, n) if r["request_id"] not in {x["request_id"] for x in rows.values()}]
        rows[door] = row
        spends[door] = delta(before, spent(sql))
        remaining[door] = int(answer.headers["x-ratelimit-remaining"])
        upstream[door] = sim_chats(simulator.url)[-1]["body"]

    native = rows["native"]
    assert native["user_id"] == USER and native["model_id"] == MODEL and native["input_tokens"] > 0
    assert native["output_tokens"] > 0 and native["cost_usd"] > 0 and native["quota_charged"] is True
    for door, row in rows.items():
        assert {f: row[f] for f in ROW_FIELDS} == {f: native[f] for f in ROW_FIELDS}, door

    # Each call: one rate-limit hit for the user and one for the project, its own tokens and cost on
    # every quota counter, and no hold left behind.
    tokens = native["input_tokens"] + native["output_tokens"]
    expected = {
        "hits": {"user": 1, "project": 1},
        "quota": {
            (scope, period): (tokens, native["cost_usd"])
            for scope in ("user", "project")
            for period in ("day", "month")
        },
        "holds": 0,
    }
    for door, spend in spends.items():
        assert spend == expected, (door, spend)
    assert list(remaining.values()) == [999, 998, 997, 996], remaining

    # The same request went upstream from every door.
    for door, sent in upstream.items():
        assert sent["messages"] == [{"role": "user", "content": PROMPT}], door
        assert sent["model"] == MODEL and sent["max_tokens"] == MAX_TOKENS, (door, sent)
