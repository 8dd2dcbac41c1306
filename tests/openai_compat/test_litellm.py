"""LiteLLM on the OpenAI door as the README sets it up: the `openai/` provider prefix (stripped by
LiteLLM before sending) followed by the gateway's model id, and `api_base` at `/api/ai/v1`."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # its price table from the package, not the network

import litellm

from tests.support import SQL, Gateway, ServerThread, sim_chats, wait_usage

MODEL = "openai/gpt-4o-mini"
EMBED = "openai/text-embedding-3-small"


def test_completion_streamed_completion_and_embedding(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL)
    gateway.enable(EMBED, outputModality=["embeddings"])
    common: dict[str, Any] = {
        "api_base": gateway.url + "/api/ai/v1",
        "api_key": gateway.token(),
        "num_retries": 0,
        "timeout": 20,
    }
    messages = [{"role": "user", "content": "Say hi"}]

    res = litellm.completion(model="openai/" + MODEL, messages=messages, **common)
    text = res.choices[0].message.content
    assert text and "Say hi" in text and res.usage.total_tokens > 0
    assert sim_chats(simulator.url)[-1]["body"]["model"] == MODEL

    stream = litellm.completion(model="openai/" + MODEL, messages=messages, stream=True, **common)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == text

    emb = litellm.embedding(model="openai/" + EMBED, input=["hello", "world"], **common)
    assert len(emb.data) == 2 and len(emb.data[0]["embedding"]) == 1536

    rows = wait_usage(sql, 3)
    assert sorted(r["kind"] for r in rows) == ["chat", "chat", "embedding"]
    assert {r["model_id"] for r in rows} == {MODEL, EMBED} and {r["user_id"] for r in rows} == {"user-1"}
