"""The streaming chat function run as the Lambda Web Adapter runs it: `run.sh` exec'd from the
read-only task root with the built layer at /opt/python, readiness polled, requests forwarded
over HTTP, and the process frozen the moment the caller has read the last byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aigateway.auth import mint_jwt

from tests.lambda_runtime.harness import PAYLOAD_LIMIT, AdapterEnvironment
from tests.support import SQL

CHAT = "openai/gpt-4o-mini"
BODY = {"model": CHAT, "messages": [{"role": "user", "content": "count me"}]}
CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("native", "/api/ai/chat/completion", BODY),
    ("native stream", "/api/ai/chat/completion", {**BODY, "stream": True}),
    ("openai", "/api/ai/v1/chat/completions", BODY),
    ("openai stream", "/api/ai/v1/chat/completions", {**BODY, "stream": True}),
    ("anthropic", "/api/ai/v1/messages", {**BODY, "max_tokens": 50}),
    ("anthropic stream", "/api/ai/v1/messages", {**BODY, "max_tokens": 50, "stream": True}),
]


@pytest.fixture
def user(sql: SQL, aws: dict[str, str], aws_secret: Callable[[str], str]) -> dict[str, str]:
    sql("TRUNCATE ai.usage, ai.configs, ai.audit_logs, ai.rate_counters, ai.quota_counters CASCADE")
    sql("DELETE FROM ai.limit_settings")
    sql(
        "INSERT INTO ai.configs (input_modality, output_modality, provider, model_id) "
        "VALUES ('{text}', '{text}', 'openrouter', %s)",
        [CHAT],
    )
    token = mint_jwt(aws_secret(aws["JwtSecret"]), {"sub": "lambda-chat-user", "role": "authenticated"})
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("name", "path", "body"), CALLS, ids=[c[0] for c in CALLS])
def test_usage_is_committed_before_the_last_byte(
    chat_function: AdapterEnvironment, sql: SQL, user: dict[str, str], name: str, path: str, body: dict[str, Any]
) -> None:
    for response in chat_function.stream("POST", path, json=body, headers=user):
        content = response.read()
        request_id = response.headers["x-request-id"]
        status = response.status_code
    assert chat_function.process.frozen
    assert status == 200, content
    if body.get("stream"):
        ends = (b"[DONE]", b'event: message_stop\ndata: {"type":"message_stop"}')
        assert b'"done":true' in content or content.rstrip().endswith(ends), content[-200:]
    rows = sql("SELECT user_id, output_tokens FROM ai.usage WHERE request_id = %s", [request_id])
    assert len(rows) == 1 and rows[0]["user_id"] == "lambda-chat-user", f"{name}: no usage row while frozen"
    assert rows[0]["output_tokens"] > 0


def test_a_body_near_the_payload_limit_is_a_clear_413(chat_function: AdapterEnvironment, user: dict[str, str]) -> None:
    """5.9 MB passes the function URL's 6 MB request limit but not the stack's MaxBodyBytes."""
    messages = [{"role": "user", "content": "x" * 11_800} for _ in range(500)]
    body = {"model": CHAT, "messages": messages}
    for response in chat_function.stream("POST", "/api/ai/chat/completion", json=body, headers=user):
        payload = response.read()
        assert response.status_code == 413, payload
    assert 5_800_000 < len(json.dumps(body)) < PAYLOAD_LIMIT
    assert b"PAYLOAD_TOO_LARGE" in payload


def test_the_environment_is_reused_across_invocations(chat_function: AdapterEnvironment, user: dict[str, str]) -> None:
    """Thawed for the second request, the same process (its warm connections) answers it."""
    pid = chat_function.process.proc.pid
    for _ in range(2):
        for response in chat_function.stream("POST", "/api/ai/chat/completion", json=BODY, headers=user):
            assert response.status_code == 200, response.read()
    assert chat_function.process.proc.pid == pid and chat_function.process.alive()


def test_readiness_is_no_error_and_going_around_the_front_door_is(
    chat_function: AdapterEnvironment, user: dict[str, str]
) -> None:
    """The adapter's readiness probes (no front-door header) are answered and never counted as
    errors; a caller who calls the function URL directly is refused."""
    assert chat_function.ready_ms is not None
    assert not [line for line in chat_function.process.output if '"Errors"' in line], chat_function.process.log()
    for response in chat_function.stream("POST", "/api/ai/chat/completion", json=BODY, headers=user, direct=True):
        assert response.status_code == 403 and b"front door" in response.read()
