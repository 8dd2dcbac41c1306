"""A batch's life past the happy path: its quota running out, cancellation, and a worker that died."""

from __future__ import annotations

from typing import Any

from aigateway.api.local import local_app
from aigateway.local import with_batch_resume
from aigateway.services import Services

from tests.batches.helpers import chat_item, enable_models, results, submit, wait_ended
from tests.support import SQL, Gateway, MakeGateway, sim_chats, wait_for


def _limits(gw: Gateway, **body: Any) -> None:
    r = gw.client.put("/api/ai/limits", json=body, headers=gw.admin())
    assert r.status_code == 200, r.text


def _sim(gw: Gateway) -> str:
    return gw.settings.openrouter_base_url.removesuffix("/api/v1")


def test_quota_exhaustion_mid_batch_stops_admitting_and_fails_the_rest_visibly(
    make_gateway: MakeGateway, sql: SQL
) -> None:
    gw = make_gateway(batch_local_concurrency=1)
    enable_models(gw)
    _limits(gw, perUser={"tokensPerDay": 50})
    user = gw.user(sub="carol")
    batch = submit(gw, [chat_item(f"i{n}", maxTokens=10) for n in range(10)], user)
    ended = wait_ended(gw, batch["id"], user)

    done, failed = ended["counts"]["done"], ended["counts"]["failed"]
    assert 1 <= done < 10 and done + failed == 10, ended
    assert ended["stoppedBy"] == "QUOTA_EXCEEDED" and ended["status"] == "completed"
    got = results(gw, batch["id"], user)
    assert [r["status"] for r in got] == ["done"] * done + ["failed"] * failed  # in order: one at a time
    for r in got[done:]:
        assert r["statusCode"] == 402 and r["body"]["error"] == "QUOTA_EXCEEDED" and r["body"]["message"]
    assert len(sim_chats(_sim(gw))) == done  # no call after the quota ran out
    assert sql("SELECT COUNT(*) AS n FROM ai.usage")[0]["n"] == done


def test_cancel_stops_pending_items(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(batch_local_concurrency=1)
    enable_models(gw)
    user = {**gw.user(sub="dave"), "x-sim-latency-ms": "200"}  # forwarded upstream: each item takes a while
    batch = submit(gw, [chat_item(f"i{n}") for n in range(20)], user)
    wait_for(lambda: gw.client.get(f"/api/ai/batches/{batch['id']}", headers=user).json()["counts"]["done"] >= 1, 10)

    r = gw.client.post(f"/api/ai/batches/{batch['id']}/cancel", headers=user)
    assert r.status_code == 200 and r.json()["status"] in ("cancelling", "cancelled")
    assert r.json()["cancelledAt"]
    ended = wait_ended(gw, batch["id"], user)
    assert ended["status"] == "cancelled"
    c = ended["counts"]
    assert c["cancelled"] >= 15 and c["done"] + c["cancelled"] == 20 and c["pending"] == 0, c
    assert len(sim_chats(_sim(gw))) == c["done"]
    assert sql("SELECT COUNT(*) AS n FROM ai.usage")[0]["n"] == c["done"]
    cancelled = [x for x in results(gw, batch["id"], user) if x["status"] == "cancelled"]
    assert len(cancelled) == c["cancelled"] and "body" not in cancelled[0]
    # Cancelling again changes nothing.
    again = gw.client.post(f"/api/ai/batches/{batch['id']}/cancel", headers=user).json()
    assert again["status"] == "cancelled" and again["counts"] == c


def _resuming(services: Services) -> Any:
    return with_batch_resume(local_app(services), services)


def test_items_a_killed_worker_left_open_run_again_at_start_up_and_are_counted_once(
    make_gateway: MakeGateway, sql: SQL
) -> None:
    gw = make_gateway()
    enable_models(gw)
    _limits(gw, perUser={"tokensPerDay": 1_000_000})  # quotas on: each answer is charged
    user = gw.user(sub="erin")
    batch = submit(gw, [chat_item("a"), chat_item("b"), chat_item("c")], user)
    wait_ended(gw, batch["id"], user)
    assert sql("SELECT COUNT(*) AS n FROM ai.usage")[0]["n"] == 3
    charged = sql("SELECT SUM(tokens) AS t FROM ai.quota_counters WHERE scope = 'user' AND period = 'day'")[0]["t"]
    gw.server.stop()

    # As a worker killed after item b's usage row landed but before its answer was recorded, and
    # before item c was picked up at all, would have left them.
    sql(
        "UPDATE ai.batch_items SET status = 'running', result = NULL WHERE batch_id = %s AND custom_id = 'b'",
        (batch["id"],),
    )
    sql(
        "UPDATE ai.batch_items SET status = 'pending', result = NULL WHERE batch_id = %s AND custom_id = 'c'",
        (batch["id"],),
    )
    sql("UPDATE ai.batches SET status = 'in_progress', completed_at = NULL WHERE id = %s", (batch["id"],))
    sql("DELETE FROM ai.usage WHERE request_id = %s", (f"batch:{batch['id']}:2",))  # c never ran

    restarted = make_gateway(app_factory=_resuming)
    ended = wait_ended(restarted, batch["id"], user)
    assert ended["counts"]["done"] == 3
    assert [r["status"] for r in results(restarted, batch["id"], user)] == ["done"] * 3
    rows = sql("SELECT request_id FROM ai.usage ORDER BY request_id")
    assert [r["request_id"] for r in rows] == [f"batch:{batch['id']}:{i}" for i in range(3)]  # b once
    assert len(sim_chats(_sim(gw))) == 3 + 2  # b and c were called again
    after = sql("SELECT SUM(tokens) AS t FROM ai.quota_counters WHERE scope = 'user' AND period = 'day'")[0]["t"]
    c_tokens = sql(
        "SELECT input_tokens + output_tokens AS t FROM ai.usage WHERE request_id = %s", (f"batch:{batch['id']}:2",)
    )[0]["t"]
    assert after <= charged + c_tokens  # b's second run charged nothing more


def test_an_item_the_upstream_rate_limits_waits_and_runs_again(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(upstream_max_tries=1)
    enable_models(gw)
    sim = {"x-sim-fail-status": "429", "x-sim-fail-times": "1", "x-sim-retry-after": "1", "x-sim-request-key": "rl"}
    user = {**gw.user(sub="kim"), **sim}
    batch = submit(gw, [chat_item("a")], user)
    ended = wait_ended(gw, batch["id"], user, timeout=20)
    assert ended["counts"]["done"] == 1
    assert sql("SELECT attempts FROM ai.batch_items")[0]["attempts"] == 2  # refused once, then answered
    assert len(sim_chats(_sim(gw))) == 2 and len(sql("SELECT 1 FROM ai.usage")) == 1


def test_an_item_still_rate_limited_after_its_runs_fails_with_the_429(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(upstream_max_tries=1, batch_max_attempts=2)
    enable_models(gw)
    user = {**gw.user(sub="lee"), "x-sim-fail-status": "429", "x-sim-retry-after": "1"}
    batch = submit(gw, [chat_item("a")], user)
    ended = wait_ended(gw, batch["id"], user, timeout=20)
    item = results(gw, batch["id"], user)[0]
    assert ended["counts"]["failed"] == 1 and item["statusCode"] == 429 and item["body"]["error"] == "RATE_LIMITED"
    assert len(sim_chats(_sim(gw))) == 2 and sql("SELECT 1 FROM ai.usage") == []
