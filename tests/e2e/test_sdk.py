"""End to end with the official clients: @insforge/sdk 1.5.2 and 1.2.4, openai (npm).

One gateway (simulator upstream) is started and `sdk_checks.mjs` runs every check against it with
the SDKs themselves; the script prints each check's result as JSON and every test below asserts on
one check, so a failure names exactly what broke. Needs Node >= 18 (skipped, saying so, without
it, unless REQUIRE_NODE_E2E is set, as CI does); `npm ci` installs tests/e2e/node_modules from the
lockfile when it is missing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import SQL, MakeGateway, ServerThread, sim_chats, sim_reset, wait_usage

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
CHAT = "openai/gpt-4o-mini"
IMAGE = "google/gemini-2.5-flash-image-preview"
EMBED = "openai/text-embedding-3-small"
DISABLED = "openai/gpt-4o"
SYSTEM_PROMPT = "You are terse."
PNG_SIGNATURE = "89504e470d0a1a0a"


def _node_major() -> int | None:
    node = shutil.which("node")
    if node is None:
        return None
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout
    try:
        return int(out.strip().lstrip("v").split(".")[0])
    except ValueError:
        return None


def _ensure_node_modules() -> None:
    if (HERE / "node_modules" / "@insforge" / "sdk").is_dir() and (HERE / "node_modules" / "openai").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: install Node.js >= 18 with npm (tests/e2e needs `npm ci`)")
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"npm ci failed in {HERE}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _wait_inside_a_minute_window() -> None:
    """The rate-limit checks make two calls in one fixed UTC minute window: keep off its edge."""
    into = time.time() % 60
    if into > 50:
        time.sleep(60 - into + 0.2)


def _run(make_gateway: MakeGateway, sql: SQL, simulator: ServerThread) -> dict[str, Any]:
    major = _node_major()
    if major is None or major < 18:
        why = f"Node.js >= 18 is needed for the SDK end-to-end tests (found: {major or 'no node'})"
        if os.environ.get("REQUIRE_NODE_E2E"):  # CI sets it: there a missing Node is a failure
            pytest.fail(why)
        pytest.skip(why)
    _ensure_node_modules()
    gw = make_gateway(upstream_max_tries=1)
    gw.enable(CHAT, systemPrompt=SYSTEM_PROMPT)
    gw.enable(IMAGE, inputModality=["text", "image"], outputModality=["image", "text"])
    gw.enable(EMBED, inputModality=["text"], outputModality=["embeddings"])
    sql(
        "INSERT INTO ai.limit_overrides (user_id, body) VALUES ('limited-user', %s::jsonb)",
        ('{"requestsPerMinute": 1}',),
    )
    sim_reset(simulator.url)
    env = {
        **os.environ,
        "GATEWAY_URL": gw.url,
        "USER_JWT": gw.token(sub="sdk-user", email="sdk@example.com"),
        "EXPIRED_JWT": gw.token(sub="sdk-user", exp=int(time.time()) - 3600),
        "LIMITED_JWT": gw.token(sub="limited-user"),
        "ADMIN_KEY": gw.admin_key,
        "CHAT_MODEL": CHAT,
        "IMAGE_MODEL": IMAGE,
        "EMBED_MODEL": EMBED,
        "DISABLED_MODEL": DISABLED,
    }
    _wait_inside_a_minute_window()
    proc = subprocess.run(
        ["node", "sdk_checks.mjs"],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"sdk_checks.mjs failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    results: dict[str, Any] = json.loads(proc.stdout)
    results["_upstream"] = [e["body"] for e in sim_chats(simulator.url)]
    results["_usage"] = wait_usage(sql, 10)
    return results


_CACHE: dict[str, dict[str, Any]] = {}


@pytest.fixture
def r(make_gateway: MakeGateway, sql: SQL, simulator: ServerThread) -> dict[str, Any]:
    """The script's results, produced once for this module (the gateway is gone afterwards)."""
    if "results" not in _CACHE:
        _CACHE["results"] = _run(make_gateway, sql, simulator)
    return _CACHE["results"]


def ok(r: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = r[name]
    assert not result.get("threw"), f"{name} threw: {result}"
    return result


def failed(r: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = r[name]
    assert result.get("threw"), f"{name} should have failed: {result}"
    return result


# -- @insforge/sdk 1.5.2 -----------------------------------------------------------------------


def test_plain_chat(r: dict[str, Any]) -> None:
    res = ok(r, "chat_plain")
    assert res["object"] == "chat.completion" and res["model"] == CHAT and res["role"] == "assistant"
    assert "Count to five" in res["content"]
    assert res["finishReason"] == "stop"
    usage = res["usage"]
    assert usage["promptTokens"] > 0 and usage["completionTokens"] > 0
    assert usage["totalTokens"] == usage["promptTokens"] + usage["completionTokens"]


def test_streamed_chat_every_chunk_in_order(r: dict[str, Any]) -> None:
    res = ok(r, "chat_stream")
    assert res["objects"] == ["chat.completion.chunk"]
    assert len(res["contents"]) >= 5  # one per upstream delta: never buffered into one
    assert "".join(res["contents"]) == ok(r, "chat_plain")["content"]


def test_tool_calls_plain(r: dict[str, Any]) -> None:
    res = ok(r, "tools_plain")
    assert res["finishReason"] == "tool_calls"
    [call] = res["toolCalls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}


def test_tool_calls_streamed(r: dict[str, Any]) -> None:
    res = ok(r, "tools_stream")
    assert res["finishReasons"] == ["tool_calls"]
    [call] = res["toolCalls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}


def test_tool_result_round_trip(r: dict[str, Any]) -> None:
    assert "tool result" in ok(r, "tool_result_roundtrip")["content"]


def test_images_b64_json_is_the_png(r: dict[str, Any]) -> None:
    res = ok(r, "images")
    assert res["count"] == 1 and not res["isDataUrl"] and res["roundTrips"]
    assert res["isPng"] and res["signature"] == PNG_SIGNATURE
    assert base64.b64decode(res["b64"]).startswith(bytes.fromhex(PNG_SIGNATURE))
    assert res["usage"]["total_tokens"] > 0


def test_embeddings(r: dict[str, Any]) -> None:
    res = ok(r, "embeddings")
    assert res["object"] == "list" and res["model"] == EMBED
    assert res["indexes"] == [0, 1] and res["dims"] == [16, 16] and res["allNumbers"]
    assert res["usage"]["prompt_tokens"] > 0 and res["usage"]["total_tokens"] >= res["usage"]["prompt_tokens"]


def test_embeddings_base64(r: dict[str, Any]) -> None:
    assert ok(r, "embeddings_base64") | {"ms": 0} == {"type": "string", "floats": 16, "ms": 0}


def test_admin_client_embeddings(r: dict[str, Any]) -> None:
    res = ok(r, "admin_embeddings")
    assert res["count"] == 1 and res["dims"] > 0 and res["usage"]["prompt_tokens"] > 0


def test_admin_client_chat(r: dict[str, Any]) -> None:
    res = ok(r, "admin_chat")
    assert res["content"] and res["usage"]["totalTokens"] > 0


# -- errors, with the SDK's own error fields ---------------------------------------------------


def test_no_token(r: dict[str, Any]) -> None:
    err = failed(r, "err_no_token")
    assert err["isInsForgeError"]
    assert err["error"] == "AUTH_INVALID_CREDENTIALS" and err["statusCode"] == 401
    assert err["message"] == "No token provided"


def test_no_token_streaming(r: dict[str, Any]) -> None:
    """The SDK's stream path throws a plain Error whose message is the body's `error` code."""
    err = failed(r, "err_no_token_stream")
    assert err["message"] == "AUTH_INVALID_CREDENTIALS"


def test_expired_jwt(r: dict[str, Any]) -> None:
    err = failed(r, "err_expired")
    assert err["error"] == "AUTH_UNAUTHORIZED" and err["statusCode"] == 401 and err["message"] == "Invalid token"


def test_model_not_enabled(r: dict[str, Any]) -> None:
    err = failed(r, "err_not_enabled")
    assert err["error"] == "AI_INVALID_MODEL" and err["statusCode"] == 400
    assert err["message"] == (
        f"Model {DISABLED} is not enabled. Please contact your administrator to enable this model."
    )
    assert err["nextActions"]


def test_embedding_model_not_enabled(r: dict[str, Any]) -> None:
    err = failed(r, "err_not_enabled_embeddings")
    assert err["error"] == "AI_INVALID_MODEL" and err["statusCode"] == 400


def test_rate_limit(r: dict[str, Any]) -> None:
    ok(r, "err_rate_limit_first")
    err = failed(r, "err_rate_limit")
    assert err["error"] == "RATE_LIMITED" and err["statusCode"] == 429 and err["message"]


def test_rate_limit_streaming(r: dict[str, Any]) -> None:
    assert failed(r, "err_rate_limit_stream")["message"] == "RATE_LIMITED"


def test_upstream_rate_limit(r: dict[str, Any]) -> None:
    err = failed(r, "err_upstream_429")
    assert err["error"] == "RATE_LIMITED" and err["statusCode"] == 429
    assert err["message"] == "AI provider rate limit exceeded. Please wait before retrying."


# -- @insforge/sdk 1.2.4 -----------------------------------------------------------------------


def test_sdk_1_2_plain_chat(r: dict[str, Any]) -> None:
    res = ok(r, "v12_chat_plain")
    assert res["content"] == ok(r, "chat_plain")["content"] and res["usage"]["totalTokens"] > 0


def test_sdk_1_2_streamed_chat(r: dict[str, Any]) -> None:
    res = ok(r, "v12_chat_stream")
    assert "".join(res["contents"]) == ok(r, "chat_plain")["content"] and len(res["contents"]) >= 5


def test_sdk_1_2_embeddings(r: dict[str, Any]) -> None:
    assert ok(r, "v12_embeddings")["dims"] == 16


# -- the openai npm package on /api/ai/v1 --------------------------------------------------------


def test_openai_js_plain(r: dict[str, Any]) -> None:
    res = ok(r, "openai_plain")
    assert res["object"] == "chat.completion" and res["model"] == CHAT and res["id"].startswith("gen-")
    assert res["content"] == ok(r, "chat_plain")["content"] and res["finishReason"] == "stop"
    assert res["usage"]["total_tokens"] == res["usage"]["prompt_tokens"] + res["usage"]["completion_tokens"]


def test_openai_js_stream(r: dict[str, Any]) -> None:
    res = ok(r, "openai_stream")
    assert "".join(res["contents"]) == ok(r, "chat_plain")["content"] and len(res["contents"]) >= 5
    assert res["finishReasons"] == ["stop"] and len(res["ids"]) == 1
    assert res["usage"]["total_tokens"] > 0


def test_openai_js_error(r: dict[str, Any]) -> None:
    err = failed(r, "openai_not_enabled")
    assert err["name"] == "BadRequestError" and err["status"] == 400 and err["code"] == "AI_INVALID_MODEL"
    assert "is not enabled" in err["message"]


# -- what the gateway did with those calls -------------------------------------------------------


def test_system_prompt_prepended_upstream(r: dict[str, Any]) -> None:
    chats = [b for b in r["_upstream"] if b["model"] == CHAT]
    assert chats and all(b["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT} for b in chats)


def test_usage_recorded_per_user(r: dict[str, Any]) -> None:
    rows = r["_usage"]
    users = {row["user_id"] for row in rows}
    assert {"sdk-user", "limited-user", None} <= users  # None: the admin API key has no subject
    kinds = {row["kind"] for row in rows if row["user_id"] == "sdk-user"}
    assert {"chat", "embedding", "image"} <= kinds
