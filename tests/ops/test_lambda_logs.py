"""The Lambda entry points configure logging at import: on Lambda (AWS_LAMBDA_FUNCTION_NAME set) a
handler's records are JSON lines on stdout, with the invocation's or the HTTP request's id."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aigateway.local import EmbeddedPostgres

from .conftest import json_lines

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


class Context:
    def __init__(self, name: str) -> None:
        self.function_name = name
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "2026/05/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _import(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"ops_lambda_{name}_app", FUNCTIONS / name / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def on_lambda(pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": "aigw-ops-test",
        "POWERTOOLS_SERVICE_NAME": "aigateway-ops",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "DATABASE_URL": pg.uri,
        "DB_SCHEMA": "ai",
        "DB_POOL_SIZE": "1",
        "JWT_SECRET": "ops-jwt-" + secrets.token_hex(16),
        "ACCESS_API_KEY": "ik_" + secrets.token_hex(32),
        "OPENROUTER_API_KEY": "sk-or-v1-ops-test",
        "AIGATEWAY_HOME": str(tmp_path),
        "AIGATEWAY_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    yield


def test_migrate_handler_logs_json_lines_with_the_invocation_id(
    on_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    fn = _import("migrate")
    capsys.readouterr()
    context = Context("aigw-MigrateFunction")
    result = fn.handler({}, context)  # a direct invocation: apply the migrations, no CloudFormation
    assert result["applied"] == []  # the session's database is migrated already
    out = capsys.readouterr().out
    lines = json_lines(out)
    assert lines and len(lines) == len([ln for ln in out.splitlines() if ln.strip()])  # nothing but JSON
    [applied] = [x for x in lines if x["logger"] == "aigateway.migrate"]
    assert applied["message"] == "applied 0 migration(s): []" and applied["level"] == "INFO"
    assert applied["request_id"] == context.aws_request_id and applied["service"] == "aigateway-ops"


def _url_event(path: str) -> dict[str, Any]:
    host = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": host, "x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.7"},
        "requestContext": {
            "domainName": host,
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"},
            "requestId": str(uuid.uuid4()),
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


def test_buffered_function_logs_json_lines_with_the_request_id(
    on_lambda: None, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = asyncio.new_event_loop()
    pool = ThreadPoolExecutor(1, initializer=asyncio.set_event_loop, initargs=(loop,))
    try:
        fn = pool.submit(_import, "configs").result(timeout=60)

        async def boom() -> None:
            raise RuntimeError("probe failure in a Lambda function")

        fn.app.add_api_route("/api/ai/_probe/fail", boom, methods=["GET"])
        capsys.readouterr()
        response = pool.submit(fn.handler, _url_event("/api/ai/_probe/fail"), Context("aigw-Configs")).result(60)
        pool.submit(loop.run_until_complete, fn.app.state.services.aclose()).result(timeout=30)
    finally:
        pool.shutdown()
        loop.close()
    assert response["statusCode"] == 500
    rid = response["headers"]["x-request-id"]
    assert json.loads(response["body"])  # the contract's error body, not a traceback
    [error] = [x for x in json_lines(capsys.readouterr().out) if x["message"] == "unhandled error"]
    assert error["request_id"] == rid and error["level"] == "ERROR" and error["service"] == "aigateway-ops"
    assert "probe failure in a Lambda function" in error["exception"]
