"""OpenRouter's Batch API as an option, against the simulator: one upstream batch for the discount,
every item still admitted as its submitter, settled per item from the upstream's results."""

from __future__ import annotations

from typing import Any

import pytest
from aigateway.api.local import local_app
from aigateway.local import with_batch_resume
from aigateway.services import Services

from tests.batches.helpers import CHAT, chat_item, embed_item, enable_models, results, submit, wait_ended
from tests.support import SQL, Gateway, MakeGateway, sim_log, wait_usage


def _resuming(services: Services) -> Any:
    return with_batch_resume(local_app(services), services)  # its lifespan runs the upstream poll locally


@pytest.fixture
def gw(make_gateway: MakeGateway) -> Gateway:
    gw = make_gateway(app_factory=_resuming, openrouter_batches="allowed", batch_poll_interval_s=0.2)
    gw.enable(CHAT, systemPrompt="Answer in one word.")
    gw.enable("openai/text-embedding-3-small", inputModality=["text"], outputModality=["embeddings"])
    return gw


def _sim(gw: Gateway) -> str:
    return gw.settings.openrouter_base_url.removesuffix("/api/v1")


def _limits(gw: Gateway, **body: Any) -> None:
    assert gw.client.put("/api/ai/limits", json=body, headers=gw.admin()).status_code == 200


def test_a_qualifying_batch_goes_upstream_as_one_batch_and_is_billed_per_item(gw: Gateway, sql: SQL) -> None:
    _limits(gw, perUser={"tokensPerDay": 1_000_000})
    user = gw.user(sub="gus")
    live = gw.client.post("/api/ai/chat/completion", json=chat_item("x", "same question")["body"], headers=user)
    assert live.status_code == 200
    live_cost = float(wait_usage(sql, 1)[0]["cost_usd"])

    batch = submit(gw, [chat_item(f"q{i}", "same question") for i in range(3)], user, upstreamBatch=True)
    assert batch["upstream"] == "openrouter"
    ended = wait_ended(gw, batch["id"], user, timeout=15)
    assert ended["counts"]["done"] == 3 and ended["status"] == "completed"

    sent = [e for e in sim_log(_sim(gw)) if e["path"] == "/api/v1/batches" and e["method"] == "POST"]
    assert len(sent) == 1
    body = sent[0]["body"]
    assert list(body)[:2] == ["endpoint", "model"] and body["model"] == CHAT
    assert [r["custom_id"] for r in body["requests"]] == ["q0", "q1", "q2"]
    assert body["requests"][0]["body"]["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert not [e for e in sim_log(_sim(gw)) if e["path"].endswith("/chat/completions") and e["seq"] > sent[0]["seq"]]

    got = results(gw, batch["id"], user)
    assert [r["status"] for r in got] == ["done"] * 3 and got[0]["body"]["success"] is True
    rows = sql(
        "SELECT request_id, cost_usd, user_id FROM ai.usage WHERE batch_id = %s ORDER BY request_id",
        (batch["id"],),
    )
    assert [r["request_id"] for r in rows] == [f"batch:{batch['id']}:{i}" for i in range(3)]
    assert {r["user_id"] for r in rows} == {"gus"}
    assert all(float(r["cost_usd"]) == pytest.approx(live_cost / 2, abs=1e-9) for r in rows)  # the discount
    counted = sql("SELECT SUM(tokens) AS t FROM ai.quota_counters WHERE scope = 'user' AND period = 'day'")[0]["t"]
    assert counted == sql("SELECT SUM(input_tokens + output_tokens) AS t FROM ai.usage")[0]["t"]
    assert sql("SELECT COUNT(*) AS n FROM ai.quota_holds")[0]["n"] == 0  # every hold settled


def test_items_that_do_not_qualify_run_on_the_gateway_and_the_option_is_off_by_default(
    gw: Gateway, make_gateway: MakeGateway
) -> None:
    user = gw.user()
    mixed = submit(gw, [chat_item("c"), embed_item("e")], user, upstreamBatch=True)
    assert mixed["upstream"] == "gateway"
    assert submit(gw, [chat_item("c")], user)["upstream"] == "gateway"  # allowed, not asked
    wait_ended(gw, mixed["id"], user)
    off = make_gateway()
    enable_models(off)
    assert submit(off, [chat_item("c")], off.user(), upstreamBatch=True)["upstream"] == "gateway"


def test_a_failed_upstream_batch_fails_its_items_and_releases_their_holds(gw: Gateway, sql: SQL) -> None:
    _limits(gw, perUser={"tokensPerDay": 1_000_000})
    user = {**gw.user(sub="hal"), "x-sim-batch-fail": "1"}  # forwarded upstream with the batch
    batch = submit(gw, [chat_item("a"), chat_item("b")], user, upstreamBatch=True)
    ended = wait_ended(gw, batch["id"], user, timeout=15)
    assert ended["counts"]["failed"] == 2
    bad = results(gw, batch["id"], user)[0]
    assert bad["statusCode"] == 502 and bad["body"]["error"] == "AI_UPSTREAM_UNAVAILABLE"
    assert "could not run this batch" in bad["body"]["message"]
    assert sql("SELECT COUNT(*) AS n FROM ai.usage")[0]["n"] == 0
    assert sql("SELECT COUNT(*) AS n FROM ai.quota_holds")[0]["n"] == 0


def test_the_upstream_batch_is_submitted_once_even_after_a_5xx(gw: Gateway, sql: SQL) -> None:
    """Creating an upstream batch is not retried: a 5xx may come after the upstream acted, and a
    second submit would run (and bill) every item twice. The items fail visibly instead."""
    user = {**gw.user(sub="ivy"), "x-sim-fail-status": "502", "x-sim-fail-times": "1", "x-sim-request-key": "once"}
    batch = submit(gw, [chat_item("a"), chat_item("b")], user, upstreamBatch=True)
    ended = wait_ended(gw, batch["id"], user, timeout=15)
    assert ended["counts"]["failed"] == 2
    posts = [e for e in sim_log(_sim(gw)) if e["method"] == "POST" and e["path"].endswith("/batches")]
    assert [e["status"] for e in posts] == [502]
    assert sql("SELECT COUNT(*) AS n FROM ai.usage")[0]["n"] == 0
    assert sql("SELECT COUNT(*) AS n FROM ai.quota_holds")[0]["n"] == 0


def test_an_item_refused_at_admission_fails_alone_before_anything_goes_upstream(gw: Gateway, sql: SQL) -> None:
    _limits(gw, perUser={"tokensPerDay": 40})  # room for about two items' holds
    user = gw.user(sub="ivy")
    batch = submit(gw, [chat_item(f"i{n}", maxTokens=10) for n in range(6)], user, upstreamBatch=True)
    ended = wait_ended(gw, batch["id"], user, timeout=15)
    assert ended["stoppedBy"] == "QUOTA_EXCEEDED"
    got = results(gw, batch["id"], user)
    done = [r for r in got if r["status"] == "done"]
    assert 1 <= len(done) < 6 and all(r["body"]["error"] == "QUOTA_EXCEEDED" for r in got if r["status"] == "failed")
    sent = [e for e in sim_log(_sim(gw)) if e["path"] == "/api/v1/batches" and e["method"] == "POST"]
    assert len(sent[0]["body"]["requests"]) == len(done)


def test_the_scheduled_rollup_run_settles_upstream_batches(make_gateway: MakeGateway, sql: SQL) -> None:
    """On AWS nothing polls between requests: the hourly usage_summary run does (rollup.run)."""
    import asyncio

    from aigateway import rollup
    from aigateway.db import Database

    gw = make_gateway(openrouter_batches="always", batch_poll_interval_s=3600)  # no local poll loop
    enable_models(gw)
    user = {**gw.user(sub="jo"), "x-sim-batch-polls": "1"}  # complete at the first poll
    batch = submit(gw, [chat_item("a"), chat_item("b")], user)
    assert batch["upstream"] == "openrouter" and batch["counts"]["pending"] == 2

    async def scheduled_run() -> dict[str, Any]:
        db = Database(lambda: gw.settings.database_url or "", schema="ai")
        try:
            return await rollup.run(gw.settings, db)
        finally:
            await db.close()

    report = asyncio.run(scheduled_run())
    assert report["upstream_batch_items_settled"] == 2
    assert gw.client.get(f"/api/ai/batches/{batch['id']}", headers=user).json()["status"] == "completed"
    assert len(sql("SELECT 1 FROM ai.usage WHERE batch_id = %s", (batch["id"],))) == 2
    again = asyncio.run(scheduled_run())  # the next hour: nothing left, nothing counted twice
    assert again["upstream_batch_items_settled"] == 0
    assert len(sql("SELECT 1 FROM ai.usage")) == 2


def test_the_quota_stays_reserved_while_the_upstream_batch_runs(gw: Gateway, sql: SQL) -> None:
    """An upstream batch may take hours within its 24 h window: its items' holds are kept that long,
    not for a live call's 15 minutes, so nothing else can spend the quota they reserve meanwhile."""
    _limits(gw, perUser={"tokensPerDay": 1_000_000})
    user = {**gw.user(sub="jo"), "x-sim-batch-polls": "100000"}  # still running when the test ends
    batch = submit(gw, [chat_item("a"), chat_item("b")], user, upstreamBatch=True)
    assert batch["upstream"] == "openrouter"
    holds = sql(
        "SELECT EXTRACT(EPOCH FROM h.expires_at - now()) AS left_s FROM ai.quota_holds h"
        " JOIN ai.batch_items i ON i.hold_id = h.id WHERE i.batch_id = %s",
        (batch["id"],),
    )
    assert len(holds) == 2
    assert all(float(h["left_s"]) > 24 * 3600 for h in holds)
