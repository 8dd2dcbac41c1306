"""The sweep of stale batch items (flows/batch_sweep.py): an item whose queue message is gone is sent
again, or failed visibly once out of attempts, and its batch ends; a fresh item is left alone; an
item run twice because of the sweep bills once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import boto3
import pytest
from aigateway.api.local import local_app
from aigateway.db import Database
from aigateway.flows.batch_sweep import SweepResult, sweep
from aigateway.local import EmbeddedPostgres, with_batch_resume
from aigateway.rollup import run
from aigateway.services import Services
from aigateway.settings import Settings

from tests.batches.helpers import CHAT, chat_item, enable_models, results, submit, wait_ended
from tests.support import SQL, Gateway, MakeGateway, sim_chats, wait_for

OWNER = "sam"


def _sweeping(services: Services) -> Any:
    """The local server as `aigateway serve` runs it: resume at start-up, then sweep periodically."""
    return with_batch_resume(local_app(services), services)


def _sim(gw: Gateway) -> str:
    return gw.settings.openrouter_base_url.removesuffix("/api/v1")


def _insert(
    sql: SQL,
    batch_id: str,
    items: dict[str, tuple[str, int]],
    *,
    age: str = "1 hour",
    batch_status: str = "in_progress",
    upstream: str = "gateway",
) -> None:
    """A stored batch whose items were never queued (a lost message): {custom id: (status, attempts)},
    last changed `age` ago."""
    sql(
        """INSERT INTO ai.batches (id, owner_role, owner_user_id, total, status, upstream)
           VALUES (%s, 'authenticated', %s, %s, %s, %s)""",
        (batch_id, OWNER, len(items), batch_status, upstream),
    )
    body = json.dumps({"request": {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]}})
    for idx, (cid, (status, attempts)) in enumerate(items.items()):
        sql(
            """INSERT INTO ai.batch_items (batch_id, custom_id, idx, kind, body, model, status, attempts, updated_at)
               VALUES (%s, %s, %s, 'chat', %s::jsonb, %s, %s, %s, now() - %s::interval)""",
            (batch_id, cid, idx, body, CHAT, status, attempts, age),
        )


def _sweep_once(settings: Settings) -> SweepResult:
    async def once() -> SweepResult:
        svc = Services.from_settings(settings)
        try:
            return await sweep(svc)
        finally:
            await svc.aclose()

    return asyncio.run(once())


def _scheduled_run(settings: Settings, pg: EmbeddedPostgres) -> dict[str, Any]:
    """One run of the scheduled function (rollup, spool drain, sweep) against the test database."""

    async def once() -> dict[str, Any]:
        db = Database(lambda: pg.uri)
        try:
            return await run(settings, db, budget_s=0.0)
        finally:
            await db.close()

    return asyncio.run(once())


def test_a_lost_item_is_sent_again_by_the_local_loop_and_completes_with_one_usage_row(
    make_gateway: MakeGateway, sql: SQL
) -> None:
    gw = make_gateway(app_factory=_sweeping, batch_poll_interval_s=0.2)
    enable_models(gw)
    _insert(sql, "batch_lost", {"a": ("pending", 0), "b": ("running", 1)})  # after start-up: no resume

    user = gw.user(sub=OWNER)
    ended = wait_ended(gw, "batch_lost", user, timeout=20)
    assert ended["status"] == "completed" and ended["counts"]["done"] == 2, ended
    assert [r["status"] for r in results(gw, "batch_lost", user)] == ["done", "done"]
    rows = sql("SELECT request_id, batch_id FROM ai.usage ORDER BY request_id")
    assert [(r["request_id"], r["batch_id"]) for r in rows] == [(f"batch:batch_lost:{i}", "batch_lost") for i in (0, 1)]
    # The lost delivery counts as an attempt, the run as another.
    attempts = sql("SELECT custom_id, attempts FROM ai.batch_items ORDER BY idx")
    assert [(r["custom_id"], r["attempts"]) for r in attempts] == [("a", 2), ("b", 3)]
    assert len(sim_chats(_sim(gw))) == 2


def test_an_item_the_sweep_runs_a_second_time_bills_once(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(app_factory=_sweeping, batch_poll_interval_s=0.2)
    enable_models(gw)
    r = gw.client.put("/api/ai/limits", json={"perUser": {"tokensPerDay": 1_000_000}}, headers=gw.admin())
    assert r.status_code == 200, r.text  # quotas on: the answer is charged
    user = gw.user(sub="tess")
    batch = submit(gw, [chat_item("a")], user)
    wait_ended(gw, batch["id"], user)
    charged = sql("SELECT SUM(tokens) AS t FROM ai.quota_counters WHERE scope = 'user' AND period = 'day'")[0]["t"]
    assert charged > 0 and len(sql("SELECT 1 FROM ai.usage")) == 1

    # As a worker that died after the usage row landed, its message then lost, would leave it.
    sql(
        """UPDATE ai.batch_items SET status = 'running', result = NULL, updated_at = now() - interval '1 hour'
            WHERE batch_id = %s""",
        (batch["id"],),
    )
    sql("UPDATE ai.batches SET status = 'in_progress', completed_at = NULL WHERE id = %s", (batch["id"],))
    assert wait_for(lambda: len(sim_chats(_sim(gw))) == 2, 20)  # the sweep ran it again
    ended = wait_ended(gw, batch["id"], user)
    assert ended["counts"]["done"] == 1 and results(gw, batch["id"], user)[0]["body"]["text"]
    assert [r["request_id"] for r in sql("SELECT request_id FROM ai.usage")] == [f"batch:{batch['id']}:0"]
    after = sql("SELECT SUM(tokens) AS t FROM ai.quota_counters WHERE scope = 'user' AND period = 'day'")[0]["t"]
    assert after == charged


def test_an_item_whose_call_outlasts_the_stale_age_is_left_alone_while_its_worker_lives(
    make_gateway: MakeGateway, sql: SQL
) -> None:
    """A live worker keeps its item fresh while the upstream call runs, so the sweep never sends it
    again: one upstream call (paid once), one usage row, although the call took three times the age
    after which an untouched item counts as lost."""
    gw = make_gateway(app_factory=_sweeping, batch_poll_interval_s=0.2, batch_stale_after_s=1.0)
    enable_models(gw)
    user = {**gw.user(sub="uma"), "x-sim-latency-ms": "3000"}  # forwarded upstream with the item
    batch = submit(gw, [chat_item("slow")], user)
    ended = wait_ended(gw, batch["id"], user, timeout=20)
    assert ended["counts"]["done"] == 1
    assert len(sim_chats(_sim(gw))) == 1
    assert len(sql("SELECT 1 FROM ai.usage WHERE batch_id = %s", (batch["id"],))) == 1


def test_a_restart_resumes_the_gateways_own_items_never_those_sent_in_an_upstream_batch(
    make_gateway: MakeGateway, sql: SQL
) -> None:
    """At start-up the local server takes up the items an earlier run left open; an item sent in an
    upstream batch is the upstream's to answer (the poll settles it), so running it here as well
    would pay for it twice."""
    _insert(sql, "batch_upstream", {"sent": ("running", 1)}, upstream="openrouter")
    _insert(sql, "batch_own", {"left": ("running", 1)})
    gw = make_gateway(app_factory=_sweeping)
    assert wait_ended(gw, "batch_own", gw.user(sub=OWNER))["status"] == "completed"  # taken up and run
    sent = sql("SELECT status, attempts FROM ai.batch_items WHERE batch_id = 'batch_upstream'")
    assert [(r["status"], r["attempts"]) for r in sent] == [("running", 1)]


def test_items_out_of_attempts_fail_visibly_fresh_ones_are_left_alone(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(batch_max_attempts=3)
    enable_models(gw)
    _insert(sql, "batch_spent", {"gone": ("running", 3), "fine": ("pending", 3)})
    sql(
        """UPDATE ai.batch_items SET status = 'failed', status_code = 400,
                  error = '{"error": "INVALID_INPUT", "message": "no", "statusCode": 400}' WHERE custom_id = 'fine'"""
    )  # finished before: "gone" is the batch's last open item
    _insert(sql, "batch_fresh", {"new": ("pending", 0)}, age="10 seconds")
    _insert(sql, "batch_cancelling", {"stuck": ("running", 1)}, batch_status="cancelling")
    _insert(sql, "batch_upstream", {"sent": ("running", 1)}, age="5 hours", upstream="openrouter")

    assert _sweep_once(gw.settings) == SweepResult(resent=0, expired=1, cancelled=1, finished=2)

    user = gw.user(sub=OWNER)
    spent = gw.client.get("/api/ai/batches/batch_spent", headers=user).json()
    assert spent["status"] == "completed" and spent["counts"]["failed"] == 2 and spent["completedAt"], spent
    gone = results(gw, "batch_spent", user)[0]
    assert gone["customId"] == "gone" and gone["status"] == "failed" and gone["statusCode"] == 502
    assert gone["body"]["error"] == "AI_UPSTREAM_UNAVAILABLE"
    assert "in 3 attempts: its run was lost" in gone["body"]["message"] and gone["body"]["nextActions"]
    assert gw.client.get("/api/ai/batches/batch_cancelling", headers=user).json()["status"] == "cancelled"
    untouched = sql(
        "SELECT batch_id, status, attempts FROM ai.batch_items WHERE batch_id IN ('batch_fresh', 'batch_upstream')"
        " ORDER BY batch_id"
    )
    assert [(r["batch_id"], r["status"], r["attempts"]) for r in untouched] == [
        ("batch_fresh", "pending", 0),
        ("batch_upstream", "running", 1),  # the poll of its upstream batch settles it
    ]
    assert sim_chats(_sim(gw)) == [] and sql("SELECT 1 FROM ai.usage") == []
    # A second sweep finds nothing more to do.
    assert _sweep_once(gw.settings) == SweepResult(resent=0, expired=0, cancelled=0, finished=0)


@pytest.mark.usefixtures("aws")
def test_the_scheduled_run_sends_lost_items_to_the_sqs_queue(
    make_gateway: MakeGateway, sql: SQL, pg: EmbeddedPostgres
) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="batches-sweep")["QueueUrl"]
    gw = make_gateway(batch_queue_url=url)
    _insert(sql, "batch_aws", {"a": ("pending", 0), "b": ("pending", 0)})
    _insert(sql, "batch_aws_fresh", {"c": ("pending", 0)}, age="1 minute")

    result = _scheduled_run(gw.settings, pg)
    assert result["batch_items_resent"] == 2 and result["batch_items_expired"] == 0, result
    bodies = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in got]
    assert sorted((b["batchId"], b["customId"]) for b in bodies) == [("batch_aws", "a"), ("batch_aws", "b")]
    assert {r["status"] for r in sql("SELECT status FROM ai.batch_items WHERE batch_id = 'batch_aws'")} == {"pending"}


def test_the_stale_age_is_a_setting_kept_above_a_minute() -> None:
    assert Settings.from_env({}).batch_stale_after_s == 900.0
    assert Settings.from_env({"BATCH_STALE_AFTER_S": "1800"}).batch_stale_after_s == 1800.0
    # Shorter than a worker's run would send live items again: held at a minute.
    assert Settings.from_env({"BATCH_STALE_AFTER_S": "5"}).batch_stale_after_s == 60.0


@pytest.mark.usefixtures("aws")
def test_a_queue_that_refuses_the_sweep_does_not_stop_the_scheduled_run(
    make_gateway: MakeGateway, sql: SQL, pg: EmbeddedPostgres
) -> None:
    gw = make_gateway(batch_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
    _insert(sql, "batch_unsent", {"a": ("pending", 0)})

    result = _scheduled_run(gw.settings, pg)  # the rollup itself still ran and reported
    assert result["batch_items_resent"] == 0 and "spool_drained" in result, result
    item = sql("SELECT status, attempts FROM ai.batch_items")[0]
    assert item == {"status": "pending", "attempts": 1}  # touched: the next sweep tries it again later
