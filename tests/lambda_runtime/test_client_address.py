"""The caller's address in the chat function as it runs on Lambda: run.sh's uvicorn behind the Web
Adapter, behind the front door. uvicorn rewrites its loopback peer from X-Forwarded-For, so this
is where a caller-written header would leak into the anon limit and the audit log."""

from __future__ import annotations

import json
from collections.abc import Callable

from aigateway.auth import mint_jwt

from tests.lambda_runtime.harness import AdapterEnvironment
from tests.support import SQL

CHAT = "openai/gpt-4o-mini"
BODY = {"model": CHAT, "messages": [{"role": "user", "content": "who am i"}], "maxTokens": 8}


def test_only_the_address_cloudfront_appended_counts(
    chat_function: AdapterEnvironment, sql: SQL, aws: dict[str, str], aws_secret: Callable[[str], str]
) -> None:
    sql("TRUNCATE ai.usage, ai.configs, ai.audit_logs, ai.rate_counters, ai.quota_counters CASCADE")
    sql("DELETE FROM ai.limit_settings")
    sql(
        "INSERT INTO ai.configs (input_modality, output_modality, provider, model_id) "
        "VALUES ('{text}', '{text}', 'openrouter', %s)",
        [CHAT],
    )
    sql(
        "INSERT INTO ai.limit_settings (id, body) VALUES ('project', %s)",
        [json.dumps({"perUser": {"requestsPerMinute": 2}})],
    )
    anon = {"authorization": f"Bearer {mint_jwt(aws_secret(aws['JwtSecret']), {'sub': 'app', 'role': 'anon'})}"}

    def call(viewer: str, spoof: str) -> int:
        """As CloudFront forwards it: the viewer's own X-Forwarded-For, then the viewer's address."""
        headers = {**anon, "x-forwarded-for": f"{spoof}, {viewer}"}
        for response in chat_function.stream("POST", "/api/ai/chat/completion", json=BODY, headers=headers):
            response.read()
            status = response.status_code
        return status

    # One viewer rotating what it writes in X-Forwarded-For: two calls a minute, no more.
    codes = [call("198.51.100.20", f"10.0.0.{i}, <b>{i}</b>") for i in range(5)]
    assert codes == [200, 200, 429, 429, 429]
    assert call("2001:db8::20", "198.51.100.20") == 200  # another viewer has its own minute
    rows = sql("SELECT ip_address FROM ai.audit_logs WHERE action = 'RATE_LIMITED'")
    assert [r["ip_address"] for r in rows] == ["198.51.100.20"] * 3
