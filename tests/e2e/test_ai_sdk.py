"""End to end with the Vercel AI SDK (`ai` + `@ai-sdk/openai`): its default `openai(model)` is the Responses API.

One gateway (simulator upstream) is started and `ai_sdk_checks.mjs` runs generateText / streamText,
plain, with a function tool (two steps: the call, then its result) and with structured output; each
test below asserts on one check. Needs Node >= 18, like tests/e2e/test_sdk.py (skipped without it
unless REQUIRE_NODE_E2E is set); `npm ci` installs tests/e2e/node_modules when `ai` is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_sdk import _node_major
from tests.support import SQL, MakeGateway, ServerThread, sim_chats, sim_reset, wait_usage

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
CHAT = "openai/gpt-4o-mini"
DISABLED = "openai/gpt-4o"
SYSTEM_PROMPT = "You are terse."


def _ensure_ai_sdk() -> None:
    modules = HERE / "node_modules"
    if (modules / "ai").is_dir() and (modules / "@ai-sdk" / "openai").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is missing: install Node.js >= 18 with npm (tests/e2e needs `npm ci`)")
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True, timeout=300, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"npm ci failed in {HERE}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _run(make_gateway: MakeGateway, sql: SQL, simulator: ServerThread) -> dict[str, Any]:
    major = _node_major()
    if major is None or major < 18:
        why = f"Node.js >= 18 is needed for the SDK end-to-end tests (found: {major or 'no node'})"
        if os.environ.get("REQUIRE_NODE_E2E"):
            pytest.fail(why)
        pytest.skip(why)
    _ensure_ai_sdk()
    gw = make_gateway(upstream_max_tries=1)
    gw.enable(CHAT, systemPrompt=SYSTEM_PROMPT)
    sim_reset(simulator.url)
    env = {
        **os.environ,
        "GATEWAY_URL": gw.url,
        "USER_JWT": gw.token(sub="ai-sdk-user"),
        "CHAT_MODEL": CHAT,
        "DISABLED_MODEL": DISABLED,
    }
    proc = subprocess.run(
        ["node", "ai_sdk_checks.mjs"], cwd=HERE, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"ai_sdk_checks.mjs failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
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


def _text(message: dict[str, Any]) -> str:
    """A chat message's text (the SDK sends user turns as parts)."""
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def ok(r: dict[str, Any], name: str) -> dict[str, Any]:
    result: dict[str, Any] = r[name]
    assert not result.get("threw"), f"{name} threw: {result}"
    return result


def test_generate_text(r: dict[str, Any]) -> None:
    res = ok(r, "generate_text")
    assert "Count to five" in res["text"] and res["finishReason"] == "stop"
    assert res["responseId"].startswith("resp_") and res["modelId"] == CHAT
    usage = res["usage"]
    assert usage["inputTokens"] > 0 and usage["outputTokens"] > 0
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"]


def test_stream_text_every_delta_in_order(r: dict[str, Any]) -> None:
    res = ok(r, "stream_text")
    assert len(res["deltas"]) >= 5  # one per upstream delta: never buffered into one
    assert "".join(res["deltas"]) == res["text"] == ok(r, "generate_text")["text"]
    assert res["finishReason"] == "stop" and res["usage"] == ok(r, "generate_text")["usage"]


def test_generate_text_with_a_tool_round_trip(r: dict[str, Any]) -> None:
    res = ok(r, "generate_text_tools")
    assert res["steps"] == 2
    assert res["toolCalls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    assert res["toolResults"] == ["Sunny in Paris, 21C"]
    assert "tool result" in res["text"] and res["finishReason"] == "stop"


def test_stream_text_with_a_tool_round_trip(r: dict[str, Any]) -> None:
    res = ok(r, "stream_text_tools")
    assert res["steps"] == 2 and res["toolCalls"] == [{"name": "get_weather", "input": {"city": "Paris"}}]
    assert {"tool-call", "tool-result", "text-delta", "finish"} <= set(res["parts"])
    assert "tool result" in res["text"]


def test_structured_output(r: dict[str, Any]) -> None:
    assert ok(r, "structured_output")["output"] == {"city": "Paris", "temperature_c": 1}


def test_second_turn_needs_store_false(r: dict[str, Any]) -> None:
    """The SDK's default refers to the earlier answer by id (nothing is stored: a 400 saying what to do);
    with `store: false` it replays the answer and the conversation goes upstream whole."""
    err = r["second_turn_default"]
    assert err.get("threw") and err["statusCode"] == 400
    assert "item_reference" in err["message"] and "store" in json.loads(err["responseBody"])["nextActions"]
    res = ok(r, "second_turn_store_false")
    assert "And once more" in res["text"]
    [upstream] = [b for b in r["_upstream"] if _text(b["messages"][-1]) == "And once more"]
    assert [m["role"] for m in upstream["messages"]] == ["system", "user", "assistant", "user"]
    assert _text(upstream["messages"][2]) == res["first"]


def test_error_in_openai_shape(r: dict[str, Any]) -> None:
    err = r["not_enabled"]
    assert err.get("threw") and err["statusCode"] == 400 and "is not enabled" in err["message"]
    assert json.loads(err["responseBody"])["error"]["code"] == "AI_INVALID_MODEL"


def test_what_went_upstream_and_was_recorded(r: dict[str, Any]) -> None:
    chats = r["_upstream"]
    assert chats and all(b["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT} for b in chats)
    tool_results = [m for b in chats for m in b["messages"] if m["role"] == "tool"]
    assert tool_results and all(m["content"] == "Sunny in Paris, 21C" for m in tool_results)
    rows = r["_usage"]
    assert len(rows) == len(chats) and {row["user_id"] for row in rows} == {"ai-sdk-user"}
