"""Batches as they run on AWS: the configs function queues the items on SQS (moto), the batch worker
function runs them from an SQS event through the Lambda harness, a redelivered message or a
worker killed mid-item never bills twice, and a failing item comes back as a partial batch failure."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aigateway.auth import mint_jwt

from tests.lambda_runtime.conftest import StartBuffered
from tests.lambda_runtime.harness import BufferedEnvironment, Invocation
from tests.support import SQL, ServerThread, sim_reset, wait_for

CHAT, EMBED = "openai/gpt-4o-mini", "openai/text-embedding-3-small"


def _sqs(moto_endpoint: str) -> Any:
    return boto3.client(
        "sqs",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:harness-batches",
            "awsRegion": "us-east-1",
        }
        for m in messages
    ]
    return {"Records": records}


def _receive_all(sqs: Any, url: str, batch_id: str, n: int, within_s: float = 20) -> list[dict[str, Any]]:
    """The queue's messages for `batch_id`, until there are `n`. A message of another batch is an
    earlier test's that came back after a visibility change (the setup drains only the visible
    ones): it is deleted, its batch is gone."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + within_s
    while len(got) < n and time.monotonic() < deadline:
        for m in sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600, WaitTimeSeconds=1
        ).get("Messages", []):
            if json.loads(m["Body"]).get("batchId") == batch_id:
                got.append(m)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return got


@dataclass
class Setup:
    configs: BufferedEnvironment
    user: dict[str, str]
    admin: dict[str, str]
    sqs: Any


@pytest.fixture
def setup(
    start_function: StartBuffered,
    sql: SQL,
    aws: dict[str, str],
    aws_secret: Callable[[str], str],
    moto_endpoint: str,
    simulator: ServerThread,
) -> Setup:
    sql("TRUNCATE ai.usage, ai.configs, ai.batches, ai.quota_counters CASCADE")
    sql("DELETE FROM ai.limit_settings")
    sqs = _sqs(moto_endpoint)
    while left := sqs.receive_message(QueueUrl=aws["BatchQueue"], MaxNumberOfMessages=10).get("Messages"):
        for m in left:  # an earlier test's leftovers (PurgeQueue is allowed once a minute)
            sqs.delete_message(QueueUrl=aws["BatchQueue"], ReceiptHandle=m["ReceiptHandle"])
    sim_reset(simulator.url)
    admin = {"authorization": f"Bearer {aws_secret(aws['AdminApiKeySecret'])}"}
    user = {
        "authorization": "Bearer " + mint_jwt(aws_secret(aws["JwtSecret"]), {"sub": "batcher", "role": "authenticated"})
    }
    # The caller's x-sim-* headers reach the simulator as on the local server (stored with the batch).
    configs = start_function("ConfigsFunction", UPSTREAM_FORWARD_HEADER_PREFIX="x-sim-")
    for model, out in ((CHAT, ["text"]), (EMBED, ["embeddings"])):
        body = {"inputModality": ["text"], "outputModality": out, "provider": "openrouter", "modelId": model}
        assert configs.request("POST", "/api/ai/configurations", body=body, headers=admin).status == 201
    return Setup(configs, user, admin, sqs)


def _submit(configs: BufferedEnvironment, user: dict[str, str], items: list[dict[str, Any]], **headers: str) -> str:
    r = configs.request("POST", "/api/ai/batches", body={"items": items}, headers={**user, **headers})
    assert r.status == 202, r.body
    return str(r.json()["id"])


ITEMS = [
    {"customId": "c1", "type": "chat", "body": {"model": CHAT, "messages": [{"role": "user", "content": "hi"}]}},
    {"customId": "c2", "type": "chat", "body": {"model": CHAT, "messages": [{"role": "user", "content": "ho"}]}},
    {"customId": "e1", "type": "embeddings", "body": {"model": EMBED, "input": "text"}},
]


def test_the_worker_runs_queued_items_from_an_sqs_event_and_a_redelivery_bills_nothing(
    setup: Setup, start_function: StartBuffered, aws: dict[str, str], sql: SQL
) -> None:
    configs, user, sqs = setup.configs, setup.user, setup.sqs
    batch_id = _submit(configs, user, ITEMS)
    messages = _receive_all(sqs, aws["BatchQueue"], batch_id, 3)
    assert sorted(json.loads(m["Body"])["customId"] for m in messages) == ["c1", "c2", "e1"]

    worker = start_function("BatchWorkerFunction")
    inv = worker.invoke(_event(messages))
    assert inv.error is None, worker.process.log()
    assert json.loads(inv.payload or b"{}") == {"batchItemFailures": []}
    state = configs.request("GET", f"/api/ai/batches/{batch_id}", headers=user).json()
    assert state["status"] == "completed" and state["counts"]["done"] == 3, state
    rows = sql("SELECT request_id, user_id, batch_id FROM ai.usage ORDER BY request_id")
    assert [r["request_id"] for r in rows] == [f"batch:{batch_id}:{i}" for i in range(3)]
    assert {(r["user_id"], r["batch_id"]) for r in rows} == {("batcher", batch_id)}

    again = worker.invoke(_event(messages))  # SQS delivers at least once
    assert json.loads(again.payload or b"{}") == {"batchItemFailures": []}
    assert len(sql("SELECT 1 FROM ai.usage")) == 3
    results = configs.request("GET", f"/api/ai/batches/{batch_id}/results", headers=user).json()["results"]
    assert [r["status"] for r in results] == ["done"] * 3


def test_a_worker_killed_mid_item_is_redelivered_and_counted_once(
    setup: Setup, start_function: StartBuffered, aws: dict[str, str], sql: SQL
) -> None:
    configs, user, sqs = setup.configs, setup.user, setup.sqs
    batch_id = _submit(configs, user, ITEMS[:1], **{"x-sim-latency-ms": "3000"})
    messages = _receive_all(sqs, aws["BatchQueue"], batch_id, 1)
    doomed = start_function("BatchWorkerFunction")
    inv = Invocation(str(uuid.uuid4()), json.dumps(_event(messages)).encode(), int(time.time() * 1000) + 300_000)
    doomed.api.pending.put(inv)
    doomed.process.thaw()
    assert wait_for(lambda: sql("SELECT status FROM ai.batch_items")[0]["status"] == "running", 20)
    doomed.close()  # killed while the upstream call is in flight
    assert not inv.done.is_set() and sql("SELECT 1 FROM ai.usage") == []

    fresh = start_function("BatchWorkerFunction")
    result = fresh.invoke(_event(messages))  # the message comes back after its visibility timeout
    assert json.loads(result.payload or b"{}") == {"batchItemFailures": []}, fresh.process.log()
    item = sql("SELECT status, attempts FROM ai.batch_items")[0]
    assert item == {"status": "done", "attempts": 2}
    assert [r["request_id"] for r in sql("SELECT request_id FROM ai.usage")] == [f"batch:{batch_id}:0"]


def test_an_item_that_must_wait_is_a_partial_batch_failure_and_bad_records_are_dropped(
    setup: Setup, start_function: StartBuffered, aws: dict[str, str], sql: SQL
) -> None:
    configs, user, sqs = setup.configs, setup.user, setup.sqs
    sql("DELETE FROM ai.rate_counters")
    batch_id = _submit(configs, user, ITEMS[:2])
    messages = _receive_all(sqs, aws["BatchQueue"], batch_id, 2)
    r = configs.request("PUT", "/api/ai/limits", body={"perUser": {"requestsPerMinute": 1}}, headers=setup.admin)
    assert r.status == 200, r.body
    worker = start_function("BatchWorkerFunction")
    junk = {**messages[0], "MessageId": "junk", "Body": "not json"}
    result = json.loads(worker.invoke(_event([*messages, junk])).payload or b"{}")
    # One item got the minute's only call; the other was rate limited and asks to come back.
    assert len(result["batchItemFailures"]) == 1 and result["batchItemFailures"][0]["itemIdentifier"] != "junk"
    statuses = sorted(r["status"] for r in sql("SELECT status FROM ai.batch_items WHERE batch_id = %s", (batch_id,)))
    assert statuses == ["done", "pending"]
    sql("DELETE FROM ai.limit_settings")
    sql("DELETE FROM ai.rate_counters")


def test_an_item_the_upstream_rate_limits_comes_back_after_its_retry_after(
    setup: Setup, start_function: StartBuffered, aws: dict[str, str], sql: SQL
) -> None:
    configs, user, sqs = setup.configs, setup.user, setup.sqs
    sim = {"x-sim-fail-status": "429", "x-sim-fail-times": "1", "x-sim-retry-after": "1", "x-sim-request-key": "w"}
    batch_id = _submit(configs, user, ITEMS[:1], **sim)
    messages = _receive_all(sqs, aws["BatchQueue"], batch_id, 1)  # invisible for 600 s as received
    worker = start_function("BatchWorkerFunction", UPSTREAM_MAX_TRIES="1")
    inv = worker.invoke(_event(messages))
    first = json.loads(inv.payload or b"{}")
    assert first == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}, worker.process.log()
    assert sql("SELECT status FROM ai.batch_items WHERE batch_id = %s", (batch_id,))[0]["status"] == "pending"
    back = _receive_all(sqs, aws["BatchQueue"], batch_id, 1)  # visible again after ~1 s, not 600
    assert [json.loads(m["Body"])["customId"] for m in back] == ["c1"]
    second = json.loads(worker.invoke(_event(back)).payload or b"{}")
    assert second == {"batchItemFailures": []}
    assert [r["request_id"] for r in sql("SELECT request_id FROM ai.usage")] == [f"batch:{batch_id}:0"]


def test_the_scheduled_function_sends_a_lost_item_again_and_the_worker_completes_it_once(
    setup: Setup, start_function: StartBuffered, aws: dict[str, str], sql: SQL
) -> None:
    """A message SQS accepted and then lost (deleted here): the hourly function's sweep sends the
    item again to the batch queue it is configured with, and the worker runs it to one usage row."""
    configs, user, sqs = setup.configs, setup.user, setup.sqs
    batch_id = _submit(configs, user, ITEMS[:1])
    for m in _receive_all(sqs, aws["BatchQueue"], batch_id, 1):
        sqs.delete_message(QueueUrl=aws["BatchQueue"], ReceiptHandle=m["ReceiptHandle"])
    sql("UPDATE ai.batch_items SET updated_at = now() - interval '1 hour' WHERE batch_id = %s", (batch_id,))

    rollup = start_function("UsageSummaryFunction")
    inv = rollup.invoke({"version": "0", "detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {}})
    assert inv.error is None, rollup.process.log()
    report = json.loads(inv.payload or b"{}")
    assert report["batch_items_resent"] == 1 and report["batch_items_expired"] == 0, report
    messages = _receive_all(sqs, aws["BatchQueue"], batch_id, 1)
    assert [json.loads(m["Body"]) for m in messages] == [{"batchId": batch_id, "customId": "c1"}]

    worker = start_function("BatchWorkerFunction")
    assert json.loads(worker.invoke(_event(messages)).payload or b"{}") == {"batchItemFailures": []}
    state = configs.request("GET", f"/api/ai/batches/{batch_id}", headers=user).json()
    assert state["status"] == "completed" and state["counts"]["done"] == 1, state
    assert [r["request_id"] for r in sql("SELECT request_id FROM ai.usage")] == [f"batch:{batch_id}:0"]
