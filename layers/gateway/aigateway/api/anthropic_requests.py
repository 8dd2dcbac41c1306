"""`POST /api/ai/v1/messages` as the Anthropic SDKs send it, and its conversion to the native request.

Like the OpenAI door (api/openai_requests.py) this decides nothing: the Anthropic request becomes
the native `schemas.ChatRequest` and runs the same chat flow, so gating, the admin's system
prompt, content policy, limits and usage are the native ones. The conversion:

* `system` (a string or text blocks) → one `system` message ahead of the caller's messages (the
  admin's system prompt is still put before it by the flow);
* content blocks → OpenAI parts: `text` → text, `image` (base64 or url) → `image_url`;
  an assistant's `tool_use` blocks → `tool_calls` (input JSON-encoded as arguments); a user's
  `tool_result` blocks → `tool` messages, placed before the rest of that user turn, as OpenAI
  orders them; `thinking` blocks sent back in history are dropped (the upstream cannot verify them);
* `tools` (`input_schema`) → functions; `tool_choice` auto/any/tool/none → auto/required/named/none,
  `disable_parallel_tool_use` → `parallelToolCalls: false`;
* `max_tokens` (required, as Anthropic requires it) → `maxTokens`, `top_p` → `topP`;
  `stop_sequences` → `stop` and `top_k` pass through to the upstream; `metadata` is ignored.

Unknown keys are dropped; an unknown block or tool type is a 400 naming the field, and so is a
value nothing downstream can carry (`RequestBody`: lone surrogates, deep nesting, huge integers).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..schemas import (
    INT64_MAX,
    ChatRequest,
    ContentPart,
    FunctionCall,
    FunctionDef,
    ImagePart,
    ImageUrl,
    Message,
    ModelId,
    RequestBody,
    TextPart,
    Tool,
    ToolCall,
    ToolChoiceFunction,
    ToolChoiceNamed,
)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextBlock(_Lenient):
    type: Literal["text"]
    text: str


class Base64Source(_Lenient):
    type: Literal["base64"]
    media_type: Annotated[str, StringConstraints(pattern=r"^image/[A-Za-z0-9.+-]+$")]
    data: Annotated[str, StringConstraints(min_length=1)]


class UrlSource(_Lenient):
    type: Literal["url"]
    url: Annotated[str, StringConstraints(min_length=1)]


class ImageBlock(_Lenient):
    type: Literal["image"]
    source: Annotated[Base64Source | UrlSource, Field(discriminator="type")]

    @property
    def url(self) -> str:
        """What OpenAI's `image_url` carries: the URL, or the bytes as a data URL."""
        src = self.source
        return src.url if isinstance(src, UrlSource) else f"data:{src.media_type};base64,{src.data}"


class ToolUseBlock(_Lenient):
    type: Literal["tool_use"]
    id: Annotated[str, StringConstraints(min_length=1)]
    name: Annotated[str, StringConstraints(min_length=1)]
    input: dict[str, Any] = Field(default_factory=dict)


ToolResultPart = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]


class ToolResultBlock(_Lenient):
    type: Literal["tool_result"]
    tool_use_id: Annotated[str, StringConstraints(min_length=1)]
    content: str | list[ToolResultPart] | None = None
    is_error: bool | None = None

    @property
    def text(self) -> str:
        """The result as the tool message's text; an error result says so (OpenAI has no flag for it)."""
        if isinstance(self.content, str):
            text = self.content
        else:
            text = "\n".join(p.text for p in self.content or () if isinstance(p, TextBlock))
        return f"Error: {text}" if self.is_error else text


class ThinkingBlock(_Lenient):
    type: Literal["thinking", "redacted_thinking"]


ContentBlock = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock, Field(discriminator="type")
]


class AnthropicMessage(_Lenient):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class AnthropicTool(_Lenient):
    """A client tool. Anthropic's server tools (web search, code execution, ...) have a `type` and are refused."""

    type: Literal["custom"] | None = None
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    description: str | None = None
    input_schema: dict[str, Any]


class ToolChoiceAuto(_Lenient):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAny(_Lenient):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(_Lenient):
    type: Literal["tool"]
    name: Annotated[str, StringConstraints(min_length=1)]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceNone(_Lenient):
    type: Literal["none"]


AnthropicToolChoice = Annotated[
    ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone, Field(discriminator="type")
]


class AnthropicRequest(RequestBody):
    """`POST /api/ai/v1/messages` as the Anthropic SDKs send it (unknown keys dropped)."""

    model: ModelId
    max_tokens: int = Field(gt=0)
    messages: list[AnthropicMessage]
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = False
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0, le=INT64_MAX)
    tools: list[AnthropicTool] | None = Field(default=None, max_length=128)
    tool_choice: AnthropicToolChoice | None = None
    metadata: dict[str, Any] | None = None  # `user_id` is Anthropic's abuse tracking: not ours to pass on


def _system_message(system: str | list[TextBlock] | None) -> list[Message]:
    if system is None:
        return []
    text = system if isinstance(system, str) else "\n\n".join(b.text for b in system)
    return [Message(role="system", content=text)] if text else []


def _user_turn(content: list[ContentBlock]) -> list[Message]:
    """A user turn: its tool results as `tool` messages, then its text and images as one message."""
    out: list[Message] = []
    parts: list[ContentPart] = []
    for block in content:
        if isinstance(block, ToolResultBlock):
            out.append(Message(role="tool", tool_call_id=block.tool_use_id, content=block.text))
        elif isinstance(block, TextBlock):
            parts.append(TextPart(type="text", text=block.text))
        elif isinstance(block, ImageBlock):
            parts.append(ImagePart(type="image_url", image_url=ImageUrl(url=block.url)))
        # tool_use and thinking blocks belong to assistant turns; in a user turn they carry nothing.
    if parts:
        out.append(Message(role="user", content=parts))
    return out


def _assistant_turn(content: list[ContentBlock]) -> Message:
    """An assistant turn: text joined, `tool_use` blocks as the turn's tool calls."""
    text = "".join(b.text for b in content if isinstance(b, TextBlock))
    calls = [
        ToolCall(id=b.id, function=FunctionCall(name=b.name, arguments=orjson.dumps(b.input).decode()))
        for b in content
        if isinstance(b, ToolUseBlock)
    ]
    return Message(role="assistant", content=text or None, tool_calls=calls or None)


def native_messages(req: AnthropicRequest) -> list[Message]:
    out = _system_message(req.system)
    for m in req.messages:
        if isinstance(m.content, str):
            out.append(Message(role=m.role, content=m.content))
        elif m.role == "user":
            out.extend(_user_turn(m.content))
        else:
            out.append(_assistant_turn(m.content))
    return out


def _tool_choice(choice: AnthropicToolChoice | None) -> Literal["auto", "none", "required"] | ToolChoiceNamed | None:
    if choice is None:
        return None
    if isinstance(choice, ToolChoiceTool):
        return ToolChoiceNamed(type="function", function=ToolChoiceFunction(name=choice.name))
    if isinstance(choice, ToolChoiceAny):
        return "required"
    if isinstance(choice, ToolChoiceNone):
        return "none"
    return "auto"


def to_native(req: AnthropicRequest) -> tuple[ChatRequest, dict[str, Any]]:
    """The native request the chat flow runs, and the upstream fields passed through as given."""
    tools = [
        Tool(type="function", function=FunctionDef(name=t.name, description=t.description, parameters=t.input_schema))
        for t in req.tools or ()
    ]
    choice = req.tool_choice
    no_parallel = not isinstance(choice, ToolChoiceNone) and choice is not None and choice.disable_parallel_tool_use
    native = ChatRequest(
        model=req.model,
        messages=native_messages(req),
        temperature=req.temperature,
        maxTokens=req.max_tokens,
        topP=req.top_p,
        stream=bool(req.stream),
        tools=tools or None,
        toolChoice=_tool_choice(choice),
        parallelToolCalls=False if no_parallel else None,
    )
    extra: dict[str, Any] = {}
    if req.stop_sequences:
        extra["stop"] = req.stop_sequences
    if req.top_k is not None:
        extra["top_k"] = req.top_k
    return native, extra
