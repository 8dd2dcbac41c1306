"""Agent and app frameworks on the OpenAI door, each as its README setup writes it: LangChain's
`ChatOpenAI` and `OpenAIEmbeddings`, and a pydantic-ai agent with a function tool and structured
output (its output arrives as a tool call made under `tool_choice: "required"`, after the tool result).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import openai
import pytest
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.support import SQL, Gateway, ServerThread, sim_chats, wait_usage

MODEL = "openai/gpt-4o-mini"
EMBED = "openai/text-embedding-3-small"
_LITELLM = importlib.util.find_spec("litellm")  # located, not imported (its import reaches for the network)
assert _LITELLM is not None and _LITELLM.origin
_LITELLM_TOKENIZERS = Path(_LITELLM.origin).parent / "litellm_core_utils" / "tokenizers"


def base(gw: Gateway) -> str:
    return gw.url + "/api/ai/v1"


def test_langchain_chat_plain_and_streamed(gateway: Gateway, sql: SQL) -> None:
    gateway.enable(MODEL)
    llm = ChatOpenAI(model=MODEL, base_url=base(gateway), api_key=gateway.token(), max_retries=0, timeout=20)  # type: ignore[arg-type]
    answer = llm.invoke("Say hi")
    assert isinstance(answer.content, str) and "Say hi" in answer.content
    streamed = "".join(str(chunk.content) for chunk in llm.stream("Say hi"))
    assert streamed == answer.content
    rows = wait_usage(sql, 2)
    assert len(rows) == 2 and {r["user_id"] for r in rows} == {"user-1"}


def test_langchain_embeddings_with_text_inputs(gateway: Gateway) -> None:
    """`check_embedding_ctx_length=False` makes LangChain send the strings (the default sends token
    ids, refused with a 400 naming that setting: test_models_and_errors.py)."""
    gateway.enable(EMBED, outputModality=["embeddings"])
    emb = OpenAIEmbeddings(
        model=EMBED,
        base_url=base(gateway),
        api_key=gateway.token(),  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    vectors = emb.embed_documents(["hello", "world"])
    assert len(vectors) == 2 and len(vectors[0]) == 1536 and vectors[0] != vectors[1]
    assert emb.embed_query("hello") == vectors[0]


def test_langchain_embeddings_default_token_ids_get_the_400_saying_what_to_set(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default (`check_embedding_ctx_length=True`) tokenizes locally and sends token ids; the
    caller sees the gateway's 400 naming the setting. tiktoken's cl100k table is read offline from
    the copy the litellm package ships."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(_LITELLM_TOKENIZERS))
    gateway.enable(EMBED, outputModality=["embeddings"])
    emb = OpenAIEmbeddings(model=EMBED, base_url=base(gateway), api_key=gateway.token(), max_retries=0)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as caught:
        emb.embed_documents(["hello", "world"])
    assert caught.value.param == "input" and "check_embedding_ctx_length=False" in caught.value.message


class Weather(BaseModel):
    city: str
    summary: str


@pytest.mark.asyncio
async def test_pydantic_ai_agent_with_a_tool_and_structured_output_ends(
    gateway: Gateway, simulator: ServerThread, sql: SQL
) -> None:
    gateway.enable(MODEL)
    provider = OpenAIProvider(base_url=base(gateway), api_key=gateway.token())
    agent: Agent[None, Weather] = Agent(OpenAIChatModel(MODEL, provider=provider), output_type=Weather)
    seen: list[str] = []

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"Sunny in {city}, 21C"

    result = await agent.run("Weather in Paris?")
    assert seen == ["Paris"]
    assert result.output == Weather(city="Paris", summary="Paris")
    sent: list[dict[str, Any]] = [c["body"] for c in sim_chats(simulator.url)]
    assert len(sent) == 2 and all(b["tool_choice"] == "required" for b in sent)
    assert sent[1]["messages"][-1]["role"] == "tool"
    assert len(wait_usage(sql, 2)) == 2
