"""aigateway.metrics: one CloudWatch Embedded Metric Format line per answered call on Lambda,
nothing locally. The document shape is checked against the EMF rules CloudWatch applies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aigateway import metrics
from aigateway.store.usage import UsageRecord

Gateway = Any  # tests/conftest.py's Gateway

EMF_UNITS = {"Milliseconds", "Count", "None", "Seconds", "Bytes"}


def assert_emf(doc: dict[str, Any]) -> None:
    """The rules CloudWatch Logs applies before it extracts a metric from a log line."""
    meta = doc["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 1_600_000_000_000
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list)
    for d in directives:
        assert isinstance(d["Namespace"], str) and d["Namespace"]
        assert 1 <= len(d["Metrics"]) <= 100
        for dims in d["Dimensions"]:
            assert 1 <= len(dims) <= 30
            for name in dims:
                assert isinstance(doc[name], str) and doc[name], name  # every dimension has a string value
        for metric in d["Metrics"]:
            assert metric["Unit"] in EMF_UNITS
            value = doc[metric["Name"]]
            assert isinstance(value, int | float) and not isinstance(value, bool), metric


def _record(**overrides: Any) -> UsageRecord:
    fields: dict[str, Any] = dict(
        request_id="r1",
        model_id="openai/gpt-4o-mini",
        input_tokens=12,
        output_tokens=30,
        cost_usd=0.00042,
        key_source="env",
        latency_ms=840,
    )
    fields.update(overrides)
    return UsageRecord(**fields)


def test_document_of_a_settled_stream() -> None:
    doc = metrics.emf_document(
        service="aigateway-chat",
        timestamp_ms=1_767_000_000_000,
        record=_record(),
        latency_ms=912.34,
        first_byte_ms=180.0,
        status=200,
    )
    assert_emf(doc)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "AIGateway"
    assert directive["Dimensions"] == [["Service"]]  # each dimension set multiplies the billed metrics
    names = {m["Name"] for m in directive["Metrics"]}
    assert names == {"Latency", "TimeToFirstByte", "InputTokens", "OutputTokens", "CostUSD"}
    assert (doc["Latency"], doc["TimeToFirstByte"], doc["InputTokens"], doc["OutputTokens"]) == (912.3, 180.0, 12, 30)
    assert doc["CostUSD"] == 0.00042 and doc["Kind"] == "chat" and doc["Service"] == "aigateway-chat"
    assert doc["model"] == "openai/gpt-4o-mini"  # a property, not a dimension
    assert "ErrorCode" not in doc


def test_document_of_an_error() -> None:
    doc = metrics.emf_document(
        service="aigateway-chat", timestamp_ms=1_767_000_000_000, latency_ms=3.0, status=429, error_code="RATE_LIMITED"
    )
    assert_emf(doc)
    latency, errors = doc["_aws"]["CloudWatchMetrics"]
    assert [m["Name"] for m in latency["Metrics"]] == ["Latency"]
    assert errors["Dimensions"] == [["Service"], ["Service", "ErrorCode"]]
    assert errors["Metrics"] == [{"Name": "Errors", "Unit": "Count"}]
    assert (doc["ErrorCode"], doc["Errors"], doc["status"]) == ("RATE_LIMITED", 1, 429)


def test_images_and_a_missing_cost() -> None:
    doc = metrics.emf_document(
        service="aigateway-images",
        timestamp_ms=1_767_000_000_000,
        record=_record(kind="image", image_count=2, cost_usd=None, input_tokens=None, output_tokens=None),
    )
    assert_emf(doc)
    names = {m["Name"] for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"Latency", "InputTokens", "OutputTokens", "Images"}  # latency from the record
    assert doc["Latency"] == 840 and doc["Images"] == 2 and doc["Kind"] == "image"


def test_nothing_is_printed_locally(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    metrics.record_call(_record())
    assert capsys.readouterr().out == ""


def test_outside_a_request_the_record_is_printed_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "aigateway-test-chat")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "aigateway-chat")
    metrics.record_call(_record())
    (line,) = capsys.readouterr().out.splitlines()
    doc = json.loads(line)
    assert_emf(doc)
    assert doc["Service"] == "aigateway-chat" and doc["OutputTokens"] == 30


def _emf_lines(text: str) -> list[dict[str, Any]]:
    return [d for d in (json.loads(x) for x in text.splitlines() if x.startswith("{")) if "_aws" in d]


def test_one_line_per_answered_call_over_http(
    make_gateway: Callable[..., Gateway], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "aigateway-test-chat")
    gw = make_gateway()
    gw.enable("openai/gpt-4o-mini")
    capsys.readouterr()
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    assert gw.client.post("/api/ai/chat/completion", json=body, headers=gw.user()).status_code == 200
    with gw.client.stream("POST", "/api/ai/chat/completion", json={**body, "stream": True}, headers=gw.user()) as r:
        assert r.status_code == 200
        r.read()
    bad = gw.client.post("/api/ai/chat/completion", json={**body, "model": "nope/x"}, headers=gw.user())
    assert bad.status_code == 400
    assert gw.client.get("/api/ai/configurations", headers=gw.admin()).status_code == 200  # no line

    lines = _emf_lines(capsys.readouterr().out)
    assert len(lines) == 3, lines
    plain, stream, error = lines
    for doc in lines:
        assert_emf(doc)
    assert plain["Kind"] == "chat" and plain["OutputTokens"] > 0 and "TimeToFirstByte" not in plain
    assert stream["OutputTokens"] > 0 and 0 < stream["TimeToFirstByte"] <= stream["Latency"]
    assert error["ErrorCode"] == "AI_INVALID_MODEL" and error["status"] == 400 and "OutputTokens" not in error


def test_keep_alives_are_not_the_first_byte(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "aigateway-test-chat")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
        await asyncio.sleep(0.05)
        metrics.record_call(_record())
        await send({"type": "http.response.body", "body": b'data: {"chunk": "hi"}\n\n', "more_body": False})

    async def send(_: Any) -> None:
        pass

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    asyncio.run(metrics.RequestMetrics(app)({"type": "http", "method": "POST", "path": "/"}, receive, send))
    (doc,) = _emf_lines(capsys.readouterr().out)
    assert_emf(doc)
    assert doc["TimeToFirstByte"] >= 45 and doc["OutputTokens"] == 30 and doc["status"] == 200
