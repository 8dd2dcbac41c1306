"""Bounds and upkeep: the entry and total caps, eviction, the rollup's sweep, admin stats and purges,
and the usage summary's hits and savings."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aigateway.db import Database
from aigateway.local import EmbeddedPostgres
from aigateway.rollup import run

from tests.support import SQL, Gateway, MakeGateway, ServerThread, sim_chats, wait_usage

MODEL = "openai/gpt-4o-mini"
OTHER = "anthropic/claude-3.5-haiku"
CACHE = {"ttlSeconds": 600, "scope": "project"}


def _chat(gw: Gateway, text: str, model: str = MODEL, sub: str = "user-1") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    r = gw.client.post("/api/ai/chat/completion", json=body, headers=gw.user(sub=sub))
    assert r.status_code == 200, r.text
    return r


def _entries(sql: SQL) -> int:
    return int(sql("SELECT count(*) AS n FROM ai.cache_entries")[0]["n"])


def test_entry_cap_skips_large_answers(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(cache_max_entry_bytes=200)
    gw.enable(MODEL, cache=CACHE)
    _chat(gw, "a question whose answer is larger than two hundred bytes of JSON")
    assert _entries(sql) == 0
    assert _chat(gw, "a question whose answer is larger than two hundred bytes of JSON").headers["x-gateway-cache"] == (
        "MISS"
    )


def test_total_cap_evicts_oldest_first(make_gateway: MakeGateway, sql: SQL, simulator: ServerThread) -> None:
    gw = make_gateway(cache_evict_interval_s=0.0)
    gw.enable(MODEL, cache=CACHE)
    _chat(gw, "first question")
    size = int(sql("SELECT bytes FROM ai.cache_entries")[0]["bytes"])
    gw2 = make_gateway(cache_evict_interval_s=0.0, cache_max_total_bytes=int(size * 2.5))
    for text in ("second question", "third question"):
        _chat(gw2, text)
    assert _entries(sql) == 2
    assert _chat(gw2, "first question").headers["x-gateway-cache"] == "MISS"  # the oldest was evicted
    assert _chat(gw2, "third question").headers["x-gateway-cache"] == "HIT"


def test_expired_entries_are_not_served_and_the_rollup_sweeps_them(
    gateway: Gateway, sql: SQL, pg: EmbeddedPostgres
) -> None:
    gateway.enable(MODEL, cache=CACHE)
    _chat(gateway, "short lived")
    sql("UPDATE ai.cache_entries SET expires_at = now() - interval '1 second'")
    assert _chat(gateway, "short lived").headers["x-gateway-cache"] == "MISS"  # and stored again
    _chat(gateway, "another one")
    sql("UPDATE ai.cache_entries SET expires_at = now() - interval '1 second' WHERE bytes > 0")
    assert _entries(sql) == 2
    stats = gateway.client.get("/api/ai/cache", headers=gateway.admin()).json()
    assert stats["expiredEntries"] == 2

    async def once() -> dict[str, Any]:
        db = Database(lambda: pg.uri)
        try:
            return await run(gateway.settings, db)
        finally:
            await db.close()

    result = asyncio.run(once())
    assert result["cache_expired"] == 2 and _entries(sql) == 0


def test_stats_and_purges_are_audited(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL, cache=CACHE)
    gateway.enable(OTHER, cache=CACHE)
    _chat(gateway, "one", sub="alice")
    _chat(gateway, "two", sub="bob")
    _chat(gateway, "three", model=OTHER, sub="alice")
    _chat(gateway, "one", sub="carol")  # a hit
    admin = gateway.admin()
    stats = gateway.client.get("/api/ai/cache", headers=admin).json()
    assert stats["entries"] == 3 and stats["bytes"] > 0 and stats["maxTotalBytes"] > 0
    assert {(m["modelId"], m["entries"]) for m in stats["models"]} == {(MODEL, 2), (OTHER, 1)}
    wait_usage(sql, 4)
    last = gateway.client.get("/api/ai/cache", headers=admin).json()["last30Days"]
    assert last["hits"] == 1 and last["requests"] == 4 and last["hitRate"] == 0.25 and last["savedUsd"] > 0

    r = gateway.client.delete("/api/ai/cache", headers=admin)
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT"
    r = gateway.client.delete("/api/ai/cache", params={"all": "maybe"}, headers=admin)
    assert r.status_code == 400 and r.json()["error"] == "INVALID_INPUT" and "all" in r.json()["message"]
    assert gateway.client.get("/api/ai/cache", headers=gateway.user()).status_code in (401, 403)
    assert gateway.client.delete("/api/ai/cache?all=true", headers=gateway.user()).status_code in (401, 403)
    assert _entries(sql) == 3

    r = gateway.client.delete("/api/ai/cache", params={"userId": "bob"}, headers=admin)
    assert r.status_code == 200 and r.json()["deleted"] == 1
    r = gateway.client.delete("/api/ai/cache", params={"modelId": OTHER}, headers=admin)
    assert r.json()["deleted"] == 1
    assert _chat(gateway, "one").headers["x-gateway-cache"] == "HIT"
    r = gateway.client.delete("/api/ai/cache", params={"all": "true"}, headers=admin)
    assert r.json()["deleted"] == 1 and _entries(sql) == 0
    audits = sql("SELECT details FROM ai.audit_logs WHERE action = 'PURGE_CACHE' ORDER BY created_at")
    assert [a["details"] for a in audits] == [
        {"modelId": None, "userId": "bob", "all": False, "deleted": 1},
        {"modelId": OTHER, "userId": None, "all": False, "deleted": 1},
        {"modelId": None, "userId": None, "all": True, "deleted": 1},
    ]


def test_summary_reports_hits_and_savings(gateway: Gateway, sql: SQL, simulator: ServerThread) -> None:
    gateway.enable(MODEL, cache=CACHE)
    gateway.enable(OTHER)
    for sub in ("alice", "bob", "carol"):
        _chat(gateway, "the same question", sub=sub)
    _chat(gateway, "uncached model", model=OTHER)
    rows = wait_usage(sql, 4)
    live = next(r for r in rows if r["model_id"] == MODEL and not r["cached"])
    r = gateway.client.get("/api/ai/usage/summary", params={"groupBy": "model"}, headers=gateway.admin())
    body = r.json()
    assert body["totalRequests"] == 4 and body["cacheHits"] == 2 and body["cacheHitRate"] == 0.5
    assert body["savedUsd"] == pytest.approx(2 * float(live["cost_usd"]))
    assert body["totalCostUsd"] == pytest.approx(sum(float(x["cost_usd"]) for x in rows))
    groups = {g["key"]: g for g in body["groups"]}
    assert groups[MODEL]["cacheHits"] == 2 and groups[MODEL]["cacheHitRate"] == pytest.approx(0.6667)
    assert groups[OTHER]["cacheHits"] == 0 and groups[OTHER]["savedUsd"] == 0
    records = gateway.client.get("/api/ai/usage", headers=gateway.admin()).json()["records"]
    assert sorted((r["cached"], r["savedUsd"] is not None) for r in records) == [
        (False, False),
        (False, False),
        (True, True),
        (True, True),
    ]
    assert all(r["costUsd"] == 0 and r["keySource"] == "cache" for r in records if r["cached"])
    by_user = gateway.client.get("/api/ai/usage/summary", params={"groupBy": "user"}, headers=gateway.admin()).json()
    assert {g["key"]: g["cacheHits"] for g in by_user["groups"]} == {"alice": 0, "bob": 1, "carol": 1, "user-1": 0}
    assert len(sim_chats(simulator.url)) == 2


def test_a_hit_passes_limits_and_spends_no_quota(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL, cache=CACHE)
    limits = {"perUser": {"requestsPerMinute": 2, "burst": 0, "tokensPerDay": 1_000_000}}
    r = gateway.client.put("/api/ai/limits", json=limits, headers=gateway.admin())
    assert r.status_code == 200, r.text
    _chat(gateway, "rate limited hits")
    _chat(gateway, "rate limited hits")  # a hit, still counted by the rate limit
    third = gateway.client.post(
        "/api/ai/chat/completion",
        json={"model": MODEL, "messages": [{"role": "user", "content": "rate limited hits"}]},
        headers=gateway.user(),
    )
    assert third.status_code == 429
    rows = wait_usage(sql, 2)
    spent = sql("SELECT tokens FROM ai.quota_counters WHERE scope = 'user' AND period = 'day'")
    live = next(r for r in rows if not r["cached"])
    assert [int(s["tokens"]) for s in spent] == [live["input_tokens"] + live["output_tokens"]]
    assert sql("SELECT count(*) AS n FROM ai.quota_holds")[0]["n"] == 0  # the hit's hold was dropped


def test_hot_entries_in_process_still_bill_and_purge_at_once(
    make_gateway: MakeGateway, sql: SQL, simulator: ServerThread
) -> None:
    """With a configuration cache TTL, a process keeps the entries it used: a repeated hit needs no
    database lookup, is still billed as a cached row, and a purge in this process applies at once."""
    gw = make_gateway(config_cache_ttl_s=60.0)
    gw.enable(MODEL, cache=CACHE)
    _chat(gw, "hot question")
    sql("DELETE FROM ai.cache_entries")  # as another process's purge would: this one still has it
    for _ in range(2):
        assert _chat(gw, "hot question").headers["x-gateway-cache"] == "HIT"
    rows = wait_usage(sql, 3)
    assert [r["cached"] for r in rows] == [False, True, True]
    r = gw.client.delete("/api/ai/cache", params={"all": "true"}, headers=gw.admin())
    assert r.status_code == 200
    assert _chat(gw, "hot question").headers["x-gateway-cache"] == "MISS"
    assert len(sim_chats(simulator.url)) == 2
