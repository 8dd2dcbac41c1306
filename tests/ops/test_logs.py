"""aigateway.logs: one configure_logging for every entry point; JSON lines on Lambda with the
request id from the RequestId middleware's context variable, text locally, the configured level."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from aigateway.api.app import build_app
from aigateway.logs import bound_request_id, configure_logging, request_id_var
from aigateway.services import Services
from aigateway.settings import Settings
from fastapi import APIRouter

from .conftest import json_lines

Gateway = Any  # tests/conftest.py's Gateway (what the make_gateway fixture returns)

probe = logging.getLogger("aigateway.tests.ops")


def _probe_app(services: Services) -> Any:
    """A gateway app with two extra routes: one logs (also from a task it starts), one fails."""
    router = APIRouter()

    @router.get("/api/ai/_probe/log")
    async def log_something() -> dict[str, str]:
        probe.info("inside the route", extra={"probe": "route"})

        async def later() -> None:
            probe.info("from a task the request started", extra={"probe": "task"})

        await asyncio.create_task(later())
        return {"ok": "yes"}

    @router.get("/api/ai/_probe/fail")
    async def fail() -> None:
        raise RuntimeError("probe failure")

    return build_app(router, services=services)


def test_json_records_carry_the_request_id_of_a_real_request(
    make_gateway: Callable[..., Gateway], capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_level="INFO"), json_lines=True)
    gw = make_gateway(_probe_app)
    capsys.readouterr()

    first = gw.client.get("/api/ai/_probe/log")
    second = gw.client.get("/api/ai/_probe/log")
    failed = gw.client.get("/api/ai/_probe/fail")
    probe.info("after the requests")
    assert first.status_code == 200 and second.status_code == 200 and failed.status_code == 500

    lines = json_lines(capsys.readouterr().out)
    mine = [x for x in lines if x["logger"] == "aigateway.tests.ops"]
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert len(set(ids)) == 2
    assert [(x["request_id"], x["probe"]) for x in mine if "probe" in x] == [
        (ids[0], "route"),
        (ids[0], "task"),
        (ids[1], "route"),
        (ids[1], "task"),
    ]
    for x in mine:
        assert set(x) >= {"timestamp", "level", "logger", "message", "request_id", "service"}
        assert x["level"] == "INFO" and x["timestamp"].endswith("Z")
    # Outside a request the context variable is back to None.
    assert mine[-1]["message"] == "after the requests" and mine[-1]["request_id"] is None
    assert request_id_var.get() is None

    # The gateway's own last-resort 500 log line: the failing request's id and the traceback.
    [error] = [x for x in lines if x["message"] == "unhandled error"]
    assert error["level"] == "ERROR" and error["request_id"] == failed.headers["x-request-id"]
    assert error["exception_type"] == "RuntimeError" and "probe failure" in error["exception"]
    assert "Traceback" in error["exception"]


def test_the_configured_level_is_applied(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(Settings.from_env({"LOG_LEVEL": "warning"}), json_lines=True)
    assert logging.getLogger("aigateway").getEffectiveLevel() == logging.WARNING
    probe.info("dropped at WARNING")
    probe.warning("kept at WARNING")
    assert [x["message"] for x in json_lines(capsys.readouterr().out)] == ["kept at WARNING"]

    # The template sets POWERTOOLS_LOG_LEVEL; it wins over LOG_LEVEL, as Settings documents.
    configure_logging(Settings.from_env({"POWERTOOLS_LOG_LEVEL": "DEBUG", "LOG_LEVEL": "ERROR"}), json_lines=True)
    probe.debug("kept at DEBUG")
    assert [x["message"] for x in json_lines(capsys.readouterr().out)] == ["kept at DEBUG"]

    configure_logging(Settings(log_level="LOUD"), json_lines=True)  # unknown: INFO, and it says so
    probe.debug("dropped at INFO")
    [warning] = json_lines(capsys.readouterr().out)
    assert warning["level"] == "WARNING" and "unknown log level 'LOUD'" in warning["message"]
    assert logging.getLogger("aigateway").getEffectiveLevel() == logging.INFO


def test_configure_logging_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    first = configure_logging(Settings(), json_lines=True)
    second = configure_logging(Settings(), json_lines=True)
    added = [h for h in root.handlers if h not in before]
    assert added == [second] and first not in root.handlers
    probe.warning("once")
    assert [x["message"] for x in json_lines(capsys.readouterr().out)] == ["once"]


def test_local_text_format_on_stderr(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    configure_logging(Settings(log_level="INFO"))  # not on AWS: text
    with bound_request_id("rid-123"):
        probe.info("hello %s", "there", extra={"model": "a/m1"})
    out, err = capsys.readouterr()
    assert out == ""
    [line] = [ln for ln in err.splitlines() if "aigateway.tests.ops" in ln]
    assert line.endswith("INFO    aigateway.tests.ops [rid-123] hello there model=a/m1")


def test_on_lambda_the_runtime_handler_is_replaced(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    class LambdaLoggerHandler(logging.Handler):  # what the Python runtime's bootstrap installs
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    runtime = LambdaLoggerHandler()
    logging.getLogger().addHandler(runtime)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "aigw-test")
    configure_logging(Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "aigw-test"}))
    assert runtime not in logging.getLogger().handlers
    probe.warning("one line, not two")
    assert runtime.records == []
    assert [x["message"] for x in json_lines(capsys.readouterr().out)] == ["one line, not two"]


def test_botocore_body_records_stay_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """The redaction on botocore's loggers still applies to records that reach our handler."""
    import aigateway.crypto  # noqa: F401 - importing it installs the redactor

    configure_logging(Settings(log_level="DEBUG"), json_lines=True)
    endpoint = logging.getLogger("botocore.endpoint")
    endpoint.setLevel(logging.DEBUG)
    try:
        endpoint.debug("Response body: %s", '{"SecretString": "sk-or-v1-supersecret"}')
    finally:
        endpoint.setLevel(logging.NOTSET)
    out = capsys.readouterr().out
    [line] = json_lines(out)
    assert line["logger"] == "botocore.endpoint" and "redacted" in line["message"]
    assert "supersecret" not in out
