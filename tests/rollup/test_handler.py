"""The usage_summary Lambda handler: drains the SQS usage spool, rolls up, logs one structured line
and one CloudWatch EMF document, and reuses its event loop and connection across invocations."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from aigateway import rollup
from aigateway.store.usage import UsageRecord
from aigateway.usage_spool import SqsSpool
from moto import mock_aws

from .conftest import SQL, at, insert_usage, today

SCHEDULER_EVENT = {
    "version": "0",
    "id": "5b3f1e7c-8c47-4d3e-9a2b-1f0e8d6c4a21",
    "detail-type": "Scheduled Event",
    "source": "aws.scheduler",
    "account": "123456789012",
    "time": "2026-05-01T10:05:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/aigw-usage-summary"],
    "detail": "{}",
}


class Context:
    function_name = "aigw-UsageSummaryFunction"
    aws_request_id = "c0ffee00-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/aigw-UsageSummaryFunction"
    log_stream_name = "2026/05/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def lambda_env(uri: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", uri)
    monkeypatch.setenv("AIGATEWAY_HOME", str(tmp_path))
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", Context.function_name)  # JSON log lines, as on Lambda
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "aigateway-usage-summary")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "AIGatewayTest")
    monkeypatch.delenv("USAGE_SPOOL_QUEUE_URL", raising=False)
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    rollup.reset_runtime()
    yield
    rollup.reset_runtime()


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_handler_drains_the_spool_rolls_up_and_reports(
    clean: SQL, lambda_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = clean
    old = today(sql) - timedelta(days=3)
    insert_usage(sql, [{"created_at": at(old, 1), "user_id": "u", "input_tokens": 10, "output_tokens": 2}])
    with mock_aws():
        url = boto3.client("sqs").create_queue(QueueName="aigw-usage-spool")["QueueUrl"]
        # A record the database refused earlier, waiting in the queue with its original call time.
        spooled = UsageRecord(
            request_id="spooled-" + uuid.uuid4().hex,
            model_id="a/m1",
            user_id="u",
            input_tokens=5,
            cost_usd=0.25,
            created_at=at(old, 2).isoformat(),
        )
        asyncio.run(SqsSpool(url).put(spooled))
        monkeypatch.setenv("USAGE_SPOOL_QUEUE_URL", url)
        first = rollup.handler(SCHEDULER_EVENT, Context())
        db = rollup.runtime().db
        conn = db._idle[0]
        second = rollup.handler(SCHEDULER_EVENT, Context())
        assert db._idle == [conn]  # the same connection (and event loop) served the second run
        left = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])

    assert left["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert sql("SELECT user_id, input_tokens FROM ai.usage WHERE request_id = %s", (spooled.request_id,)) == [
        {"user_id": "u", "input_tokens": 5}
    ]
    assert first["spool_drained"] == 1 and first["spool_errors"] == 0
    assert first["days_rolled_up"] == 1 and first["first_day"] == old.isoformat()
    assert first["totals"] == {
        "requests": 2,
        "input_tokens": 15,
        "output_tokens": 2,
        "total_tokens": 17,
        "image_count": 0,
        "cost_usd": 0.25,
    }
    assert second["spool_drained"] == 0 and second["days_rolled_up"] == 0
    json.dumps(first)  # the Lambda return value must serialise

    lines = _lines(capsys.readouterr().out)
    logs = [x for x in lines if x.get("message") == "usage rollup"]
    metrics = [x for x in lines if "_aws" in x]
    assert len(logs) == 2 and len(metrics) == 2
    log = logs[0]
    assert log["level"] == "INFO" and log["service"] == "aigateway-usage-summary"
    assert log["totals"] == first["totals"] and log["spool_drained"] == 1 and log["days_rolled_up"] == 1
    emf = metrics[0]
    [directive] = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "AIGatewayTest" and directive["Dimensions"] == [["service"]]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {"Requests", "TotalTokens", "CostUsd", "DaysRolledUp", "SpoolDrained"} <= names
    assert all(name in emf for name in names)  # every declared metric has its value
    assert emf["service"] == "aigateway-usage-summary"
    assert (emf["Requests"], emf["TotalTokens"], emf["CostUsd"], emf["SpoolDrained"]) == (2, 17, 0.25, 1)
    assert isinstance(emf["_aws"]["Timestamp"], int)
    assert metrics[1]["Requests"] == 0  # the second run added nothing


def test_a_spool_failure_does_not_stop_the_rollup(
    clean: SQL, lambda_env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = clean
    insert_usage(sql, [{"created_at": at(today(sql) - timedelta(days=1), 1), "user_id": "u"}])
    with mock_aws():  # the queue does not exist: receive_message fails
        monkeypatch.setenv("USAGE_SPOOL_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/missing")
        result = rollup.handler(SCHEDULER_EVENT, Context())
    assert result["spool_errors"] == 1 and result["spool_drained"] == 0
    assert result["days_rolled_up"] == 1
    lines = _lines(capsys.readouterr().out)
    assert any(x.get("level") == "WARNING" and x.get("message") == "usage spool drain failed" for x in lines)
    assert [x["SpoolErrors"] for x in lines if "_aws" in x] == [1]


def test_summarize_cli_entry_prints_the_report(
    clean: SQL, lambda_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = clean
    insert_usage(sql, [{"created_at": at(today(sql) - timedelta(days=2), 1), "input_tokens": 3}])
    assert rollup.main() == 0
    [log] = [x for x in _lines(capsys.readouterr().out) if x.get("message") == "usage rollup"]
    assert log["totals"]["input_tokens"] == 3
