"""The AWS queue from the submitting side (moto SQS): one message per item naming it, and a queue
that refuses leaves no batch behind and tells the caller to retry."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.batches.helpers import chat_item, enable_models
from tests.support import SQL, MakeGateway


@pytest.mark.usefixtures("aws")
def test_submitting_sends_one_message_per_item(make_gateway: MakeGateway, sql: SQL) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="batches-test")["QueueUrl"]
    gw = make_gateway(batch_queue_url=url)
    enable_models(gw)
    items = [chat_item(f"i{n}") for n in range(12)]  # two SendMessageBatch calls
    r = gw.client.post("/api/ai/batches", json={"items": items}, headers=gw.user())
    assert r.status_code == 202, r.text
    bodies = []
    while got := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [json.loads(m["Body"]) for m in got]
    assert sorted(b["customId"] for b in bodies) == sorted(i["customId"] for i in items)
    assert {b["batchId"] for b in bodies} == {r.json()["id"]}
    assert sql("SELECT status FROM ai.batch_items WHERE custom_id = 'i0'")[0]["status"] == "pending"


@pytest.mark.usefixtures("aws")
def test_a_queue_that_refuses_leaves_no_batch_and_asks_for_a_retry(make_gateway: MakeGateway, sql: SQL) -> None:
    gw = make_gateway(batch_queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/no-such-queue")
    enable_models(gw)
    r = gw.client.post("/api/ai/batches", json={"items": [chat_item("a")]}, headers=gw.user())
    assert r.status_code == 503 and r.json()["error"] == "SERVICE_UNAVAILABLE"
    assert "no-such-queue" not in r.text and "nothing was submitted" in r.json()["message"]
    assert sql("SELECT COUNT(*) AS n FROM ai.batches")[0]["n"] == 0
