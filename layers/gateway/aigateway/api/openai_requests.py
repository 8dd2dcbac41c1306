"""`POST /api/ai/v1/chat/completions` as the OpenAI SDKs send it, and its conversion to the native request.

Nothing here decides *whether* a call may happen: the OpenAI request becomes the native
`schemas.ChatRequest` and runs the same chat flow, so gating, the admin's system prompt, content
policy, limits and usage are the native ones. The conversion: `max_completion_tokens` /
`max_tokens` → `maxTokens`, `top_p` → `topP`, `tool_choice`, `parallel_tool_calls`; `developer`
messages become `system` ones; sampling fields the native schema does not know (`stop`, `seed`,
penalties, `response_format`, `user`, `plugins`, `reasoning`, ...) pass through to the upstream
unchanged; `n` must be 1. Unknown keys are dropped. docs/adr/ records why.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ..errors import invalid_input
from ..schemas import INT64_MAX, INT64_MIN, ChatRequest, Message, ModelId, RequestBody, Tool, ToolChoiceNamed


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OpenAIMessage(Message):
    """An OpenAI chat message: the native message plus the `developer` role (sent as `system`)."""

    @model_validator(mode="before")
    @classmethod
    def _developer_is_system(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("role") == "developer":
            return {**data, "role": "system"}
        return data


class StreamOptions(_Lenient):
    include_usage: bool | None = None


class OpenAIChatRequest(RequestBody):
    """`POST /api/ai/v1/chat/completions` as the OpenAI SDKs send it (unknown keys dropped)."""

    model: ModelId
    messages: list[OpenAIMessage]
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    max_completion_tokens: int | None = Field(default=None, gt=0)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | ToolChoiceNamed | None = None
    parallel_tool_calls: bool | None = None
    # Passed to the upstream as given.
    response_format: dict[str, Any] | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(default=None, ge=INT64_MIN, le=INT64_MAX)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    user: Annotated[str, StringConstraints(max_length=256)] | None = None
    # OpenRouter extras.
    plugins: list[dict[str, Any]] | None = None
    reasoning: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    top_k: int | None = Field(default=None, ge=0, le=INT64_MAX)
    min_p: float | None = None
    top_a: float | None = None
    repetition_penalty: float | None = None
    # The gateway's own: false = this call neither reads nor fills the response cache.
    cache: bool | None = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


PASS_THROUGH = (
    "response_format",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "plugins",
    "reasoning",
    "reasoning_effort",
    "top_k",
    "min_p",
    "top_a",
    "repetition_penalty",
)


def to_native(req: OpenAIChatRequest) -> tuple[ChatRequest, dict[str, Any]]:
    """The native request the chat flow runs, and the upstream fields passed through as given."""
    if req.n is not None and req.n != 1:
        raise invalid_input("Validation error: n: only n=1 is supported", "Send n=1 (or leave it out).")
    if isinstance(req.stop, list) and len(req.stop) > 4:
        raise invalid_input("Validation error: stop: at most 4 stop sequences are allowed")
    native = ChatRequest(
        model=req.model,
        messages=list(req.messages),
        temperature=req.temperature,
        maxTokens=req.max_completion_tokens or req.max_tokens,
        topP=req.top_p,
        stream=bool(req.stream),
        tools=req.tools,
        toolChoice=req.tool_choice,
        parallelToolCalls=req.parallel_tool_calls,
        cache=req.cache,
    )
    extra = {k: getattr(req, k) for k in PASS_THROUGH if getattr(req, k) is not None}
    return native, extra
