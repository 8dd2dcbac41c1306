"""The `openai-agents` package's default model (the Responses API) running an Agent against the gateway.

The Agents SDK sends what it sends by default (no `store`, no `previous_response_id`, `include: []`,
strict function schemas) and replays the conversation in `input` (the function call, then its output):
the gateway must take that as it is. Tracing is off, so nothing leaves the loopback.
"""

from __future__ import annotations

import agents
import pytest
from agents import Agent, OpenAIProvider, OpenAIResponsesModel, RunConfig, Runner, function_tool
from openai import AsyncOpenAI
from pydantic import BaseModel

from tests.support import SQL, Gateway, ServerThread, sim_chats, wait_usage

MODEL = "openai/gpt-4o-mini"

agents.set_tracing_disabled(True)


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}, 21C"


def run_config(gw: Gateway) -> RunConfig:
    """The default provider (Responses API) with its OpenAI client pointed at the gateway, a user JWT as key."""
    client = AsyncOpenAI(base_url=gw.url + "/api/ai/v1", api_key=gw.token(), max_retries=0, timeout=20)
    provider = OpenAIProvider(openai_client=client)
    assert isinstance(provider.get_model(MODEL), OpenAIResponsesModel)  # the default model is Responses
    return RunConfig(model_provider=provider)


def agent() -> Agent:
    return Agent(name="weather", instructions="Use the tool, then answer.", tools=[get_weather], model=MODEL)


def _check_round_trip(simulator: ServerThread, sql: SQL) -> None:
    first, second = (c["body"] for c in sim_chats(simulator.url)[-2:])
    assert first["messages"][0] == {"role": "system", "content": "You are terse."}
    assert first["messages"][1] == {"role": "system", "content": "Use the tool, then answer."}
    assert first["tools"][0]["function"]["name"] == "get_weather"
    call = second["messages"][-2]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert second["messages"][-1] == {"role": "tool", "tool_call_id": call["id"], "content": "Sunny in Paris, 21C"}
    rows = wait_usage(sql, 2)
    assert len(rows) == 2 and all(r["kind"] == "chat" and r["user_id"] == "user-1" for r in rows)


@pytest.mark.asyncio
async def test_agent_runs_a_function_tool(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL, systemPrompt="You are terse.")
    result = await Runner.run(agent(), "Weather in Paris?", run_config=run_config(gateway))
    assert "tool result" in result.final_output and "Sunny in Paris" in result.final_output
    _check_round_trip(simulator, sql)


@pytest.mark.asyncio
async def test_agent_streamed_runs_a_function_tool(gateway: Gateway, simulator: ServerThread, sql: SQL) -> None:
    gateway.enable(MODEL, systemPrompt="You are terse.")
    run = Runner.run_streamed(agent(), "Weather in Paris?", run_config=run_config(gateway))
    kinds = [event.type async for event in run.stream_events()]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert "tool result" in run.final_output
    _check_round_trip(simulator, sql)


class Forecast(BaseModel):
    city: str
    temperature_c: int


@pytest.mark.asyncio
async def test_agent_structured_output(gateway: Gateway, simulator: ServerThread) -> None:
    gateway.enable(MODEL)
    typed = Agent(name="forecaster", instructions="Answer as JSON.", output_type=Forecast, model=MODEL)
    result = await Runner.run(typed, "Forecast for Paris", run_config=run_config(gateway))
    assert result.final_output == Forecast(city="Paris", temperature_c=1)
    fmt = sim_chats(simulator.url)[-1]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
