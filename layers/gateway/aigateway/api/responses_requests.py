"""`POST /api/ai/v1/responses` as the OpenAI SDKs send it, and its conversion to the chat request.

Nothing here decides *whether* a call may happen: the Responses request becomes the native
`schemas.ChatRequest` and runs the chat flow, so gating, the admin's system prompt, content
policy, limits and usage are the chat ones. The conversion:

* `input` (a string, or message / `function_call` / `function_call_output` items) becomes chat
  messages; `instructions` a system message placed first among the caller's (the admin's system
  prompt still precedes it); `max_output_tokens` → `maxTokens`; function `tools`, `tool_choice`,
  `parallel_tool_calls`, `temperature`, `top_p` → the chat fields; `text.format` → the upstream's
  `response_format`; `reasoning.effort` and `user` / `safety_identifier` pass through. Reasoning
  items a client replays are not sent upstream again. Unknown keys are dropped.
* Nothing is kept after the answer, so whatever needs a response or item held server-side is
  refused with a 400 naming the field: `store: true`, `previous_response_id`, `conversation`,
  `background`, stored `prompt` templates and `item_reference` input items. Callers carry the
  conversation in `input`, as the openai SDK and the Agents SDK do by default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

from ..errors import invalid_input
from ..schemas import (
    ChatRequest,
    ContentPart,
    FileData,
    FilePart,
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


class InputText(_Lenient):
    """Text in a message: `input_text` from callers, `output_text` in assistant turns they replay."""

    type: Literal["input_text", "output_text"]
    text: str


class InputImage(_Lenient):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputFile(_Lenient):
    type: Literal["input_file"]
    filename: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    file_id: str | None = None


class Refusal(_Lenient):
    type: Literal["refusal"]
    refusal: str


InputPart = Annotated[InputText | InputImage | InputFile | Refusal, Field(discriminator="type")]


class MessageItem(_Lenient):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[InputPart]


class FunctionCallItem(_Lenient):
    type: Literal["function_call"]
    call_id: Annotated[str, StringConstraints(min_length=1)]
    name: str
    arguments: str = ""


class FunctionCallOutputItem(_Lenient):
    type: Literal["function_call_output"]
    call_id: Annotated[str, StringConstraints(min_length=1)]
    output: str | list[InputPart]


class ReasoningItem(_Lenient):
    """A reasoning item a client replays from an earlier answer: not sent upstream again."""

    type: Literal["reasoning"]


class ItemReference(_Lenient):
    """A pointer to a stored item: refused, nothing is stored (see the module docstring)."""

    type: Literal["item_reference"]
    id: str | None = None


def _item_type(value: Any) -> str:
    """Input items name their `type`, except the short message form (`{role, content}`)."""
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", "message")
    return str(kind)


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")]
    | Annotated[ReasoningItem, Tag("reasoning")]
    | Annotated[ItemReference, Tag("item_reference")],
    Discriminator(_item_type),
]


class FunctionTool(_Lenient):
    type: Literal["function"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(_Lenient):
    type: Literal["function"]
    name: str


class TextFormat(_Lenient):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class TextConfig(_Lenient):
    format: TextFormat | None = None


class ReasoningConfig(_Lenient):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: str | None = None


class ResponsesRequest(RequestBody):
    """`POST /api/ai/v1/responses` (unknown keys dropped; `include`, `truncation`, ... have no effect)."""

    model: ModelId
    input: str | list[InputItem]
    instructions: str | None = None
    max_output_tokens: int | None = Field(default=None, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = False
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | NamedFunction | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    user: Annotated[str, StringConstraints(max_length=256)] | None = None
    safety_identifier: Annotated[str, StringConstraints(max_length=256)] | None = None
    metadata: dict[str, str] | None = None
    # Accepted only when they ask for nothing to be kept (see the module docstring).
    store: bool | None = None
    background: bool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None


def _refuse_state(req: ResponsesRequest) -> None:
    why = "This gateway keeps no responses: send the whole conversation in `input` and leave it out."
    if req.store:
        raise invalid_input("Validation error: store: responses are not stored; send store: false or leave it out", why)
    if req.previous_response_id is not None:
        raise invalid_input("Validation error: previous_response_id: responses are not stored", why)
    if req.conversation is not None:
        raise invalid_input("Validation error: conversation: conversations are not stored", why)
    if req.background:
        raise invalid_input("Validation error: background: background responses are not supported", why)
    if req.prompt is not None:
        raise invalid_input("Validation error: prompt: stored prompt templates are not supported", why)


def _text_of(parts: str | list[InputPart]) -> str:
    if isinstance(parts, str):
        return parts
    return "".join(p.text if isinstance(p, InputText) else p.refusal if isinstance(p, Refusal) else "" for p in parts)


def _user_parts(parts: list[InputPart], where: str) -> list[ContentPart]:
    out: list[ContentPart] = []
    for j, p in enumerate(parts):
        if isinstance(p, InputText):
            out.append(TextPart(type="text", text=p.text))
        elif isinstance(p, Refusal):
            out.append(TextPart(type="text", text=p.refusal))
        elif isinstance(p, InputImage):
            if not p.image_url:
                raise invalid_input(f"Validation error: {where}.{j}.image_url: required (file ids are not supported)")
            out.append(ImagePart(type="image_url", image_url=ImageUrl(url=p.image_url, detail=p.detail)))
        else:
            data = p.file_data or p.file_url
            if not data:
                raise invalid_input(f"Validation error: {where}.{j}.file_data: required (file ids are not supported)")
            out.append(FilePart(type="file", file=FileData(filename=p.filename, file_data=data)))
    return out


def _message(item: MessageItem, where: str) -> Message:
    if item.role == "user" and isinstance(item.content, list):
        return Message(role="user", content=_user_parts(item.content, where + ".content"))
    role: Literal["user", "assistant", "system"] = "system" if item.role == "developer" else item.role
    return Message(role=role, content=_text_of(item.content))


def to_messages(req: ResponsesRequest) -> list[Message]:
    """`instructions` then `input`, as chat messages. Consecutive `function_call` items join the
    assistant message before them: one assistant turn holding its text and its tool calls."""
    out = [Message(role="system", content=req.instructions)] if req.instructions else []
    if isinstance(req.input, str):
        return [*out, Message(role="user", content=req.input)]
    for i, item in enumerate(req.input):
        where = f"input.{i}"
        if isinstance(item, MessageItem):
            out.append(_message(item, where))
        elif isinstance(item, FunctionCallItem):
            call = ToolCall(id=item.call_id, function=FunctionCall(name=item.name, arguments=item.arguments))
            last = out[-1] if out else None
            if last is not None and last.role == "assistant":
                last.tool_calls = [*(last.tool_calls or []), call]
            else:
                out.append(Message(role="assistant", content=None, tool_calls=[call]))
        elif isinstance(item, FunctionCallOutputItem):
            out.append(Message(role="tool", tool_call_id=item.call_id, content=_text_of(item.output)))
        elif isinstance(item, ItemReference):
            raise invalid_input(
                f"Validation error: {where}: item_reference: items are not stored; send the item itself",
                "Send earlier output items in full (with the Vercel AI SDK: providerOptions.openai.store = false).",
            )
    if not out:
        raise invalid_input("Validation error: input: at least one message is required")
    return out


def _response_format(fmt: TextFormat) -> dict[str, Any] | None:
    if fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    if fmt.schema_ is None:
        raise invalid_input("Validation error: text.format.schema: required for json_schema")
    schema: dict[str, Any] = {"name": fmt.name or "response", "schema": fmt.schema_}
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    if fmt.description:
        schema["description"] = fmt.description
    return {"type": "json_schema", "json_schema": schema}


def to_native(req: ResponsesRequest) -> tuple[ChatRequest, dict[str, Any]]:
    """The chat request the chat flow runs, and the upstream fields passed through as given."""
    _refuse_state(req)
    tools = [
        Tool(
            type="function",
            function=FunctionDef(name=t.name, description=t.description, parameters=t.parameters, strict=t.strict),
        )
        for t in req.tools or ()
    ]
    choice = req.tool_choice
    native = ChatRequest(
        model=req.model,
        messages=to_messages(req),
        temperature=req.temperature,
        maxTokens=req.max_output_tokens,
        topP=req.top_p,
        stream=bool(req.stream),
        tools=tools or None,
        toolChoice=(
            ToolChoiceNamed(type="function", function=ToolChoiceFunction(name=choice.name))
            if isinstance(choice, NamedFunction)
            else choice
        ),
        parallelToolCalls=req.parallel_tool_calls,
    )
    extra: dict[str, Any] = {}
    if req.text and req.text.format and (fmt := _response_format(req.text.format)):
        extra["response_format"] = fmt
    if req.reasoning and req.reasoning.effort:
        extra["reasoning"] = {"effort": req.reasoning.effort}
    if req.user or req.safety_identifier:
        extra["user"] = req.user or req.safety_identifier
    return native, extra
