"""Request bodies of the native generation routes: chat, images (with `size`, `quality`,
`numImages`, `style`, `storage`) and embeddings; field rules in docs/api.md.

Unknown keys are dropped, not rejected. Field names are the SDK's camelCase at
the top level and OpenAI's snake_case inside messages and tools, exactly as callers send them.

Every body is checked whole before its fields (`RequestBody`): the JSON parser accepts things
the rest of the gateway cannot carry, and each used to be a 500 after a rate-limit slot was
spent. A lone surrogate (`"\\ud800"`) cannot be encoded as UTF-8 for the upstream or the
database; nesting deeper than `MAX_DEPTH` (tool parameters, `response_format`, tool content) is
past what the JSON encoder writes; an integer beyond 64 bits is past what it can write at all.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_JSON_INT_MAX = 2**64 - 1  # the largest integer the JSON encoder writes


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


# PostgreSQL text cannot hold NUL: a string that is stored is refused with a 400 naming it, not a 500.
NoNul = AfterValidator(_no_nul)
ModelId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), NoNul]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Unsendable(Exception):
    """A value the gateway cannot pass on; `path` is filled in on the way out of the walk."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        self.path: list[str] = []


def _walk(value: Any, depth: int) -> None:
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise _Unsendable("must not contain unpaired surrogates (\\ud800-\\udfff)") from None
    elif isinstance(value, bool | float) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= _JSON_INT_MAX:
            raise _Unsendable("integer out of range (at most 64 bits)")
    elif isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise _Unsendable(f"nested deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            try:
                if isinstance(key, str):
                    _walk(key, depth)
                _walk(item, depth + 1)
            except _Unsendable as exc:
                exc.path.append(str(key))
                raise


def check_sendable(data: Any) -> None:
    """Raise a validation error naming the field when `data` holds a value that cannot be sent on."""
    try:
        _walk(data, 0)
    except _Unsendable as exc:
        where = ".".join(reversed(exc.path))
        raise PydanticCustomError(
            "unsendable", "{where}: {problem}", {"where": where, "problem": exc.problem}
        ) from None


class RequestBody(_Lenient):
    """A whole request body: `check_sendable` runs on the raw JSON before any field is read."""

    @model_validator(mode="before")
    @classmethod
    def _sendable(cls, data: Any) -> Any:
        check_sendable(data)
        return data


class TextPart(_Lenient):
    type: Literal["text"]
    text: str


class ImageUrl(_Lenient):
    url: Annotated[str, StringConstraints(min_length=1)]
    detail: Literal["auto", "low", "high", "original"] | None = None


class ImagePart(_Lenient):
    type: Literal["image_url"]
    image_url: ImageUrl


class InputAudio(_Lenient):
    data: str
    format: Literal["wav", "mp3", "aiff", "aac", "ogg", "flac", "m4a"]


class AudioPart(_Lenient):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FileData(_Lenient):
    filename: str | None = None
    file_data: str | None = None
    file_id: str | None = None


class FilePart(_Lenient):
    type: Literal["file"]
    file: FileData


ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")]


class FunctionCall(_Lenient):
    name: str
    arguments: str = ""


class ToolCall(_Lenient):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class LegacyImage(_Lenient):
    url: Annotated[str, StringConstraints(min_length=1)]


class Message(_Lenient):
    role: Literal["user", "assistant", "system", "tool"]
    content: str | list[ContentPart] | dict[str, Any] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    images: list[LegacyImage] | None = None

    @model_validator(mode="after")
    def _content_rules(self) -> Message:
        if "content" not in self.model_fields_set and self.role != "assistant":
            raise ValueError(f"content is required for {self.role} messages")
        if isinstance(self.content, dict) and self.role != "tool":
            raise ValueError("content must be a string or an array of content parts")
        return self


class FunctionDef(_Lenient):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Lenient):
    type: Literal["function"]
    function: FunctionDef


class ToolChoiceFunction(_Lenient):
    name: str


class ToolChoiceNamed(_Lenient):
    type: Literal["function"]
    function: ToolChoiceFunction


class WebSearch(_Lenient):
    enabled: bool
    engine: Literal["native", "exa"] | None = None
    maxResults: int | None = Field(default=None, ge=1, le=10)
    searchPrompt: str | None = None


class PdfOptions(_Lenient):
    engine: Literal["pdf-text", "mistral-ocr", "native", "cloudflare-ai"] | None = None


class FileParser(_Lenient):
    enabled: bool
    pdf: PdfOptions | None = None


class ChatRequest(RequestBody):
    model: ModelId
    messages: list[Message]
    temperature: float | None = Field(default=None, ge=0, le=2)
    maxTokens: int | None = Field(default=None, gt=0)
    topP: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = False
    webSearch: WebSearch | None = None
    fileParser: FileParser | None = None
    thinking: bool | None = None
    tools: list[Tool] | None = Field(default=None, max_length=128)
    toolChoice: Literal["auto", "none", "required"] | ToolChoiceNamed | None = None
    parallelToolCalls: bool | None = None
    cache: bool | None = None  # false: this call neither reads nor fills the response cache


class ImageRef(_Lenient):
    url: Annotated[str, StringConstraints(min_length=1)]


class ImageRequest(RequestBody):
    model: ModelId
    prompt: Annotated[str, StringConstraints(min_length=1)]
    images: list[ImageRef] | None = Field(default=None, max_length=8)
    size: Annotated[str, StringConstraints(pattern=r"^\d{2,5}x\d{2,5}$")] | None = None
    quality: Literal["standard", "hd"] | None = None
    numImages: int | None = Field(default=None, ge=1)
    style: Literal["vivid", "natural"] | None = None
    storage: bool | None = None


TEXT_ONLY_INPUT = (
    "token ids are not accepted, send the text as a string or a list of strings"
    " (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))"
)


def _is_token_ids(value: Any) -> bool:
    """`int[]` or `int[][]`: what OpenAI's embeddings API also takes, and LangChain sends by default."""
    if not isinstance(value, list) or not value:
        return False
    rows = value if all(isinstance(v, list) for v in value) else [value]
    return all(rows) and all(isinstance(t, int) and not isinstance(t, bool) for row in rows for t in row)


class EmbeddingsRequest(RequestBody):
    """Embedding inputs are text only: token ids are refused (docs/api.md#embeddings-native says why)."""

    model: ModelId
    input: str | list[str]
    cache: bool | None = None  # false: this call neither reads nor fills the embeddings cache
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=0, le=INT64_MAX)

    @field_validator("input", mode="before")
    @classmethod
    def _no_token_ids(cls, value: Any) -> Any:
        if _is_token_ids(value):
            raise PydanticCustomError("token_ids", TEXT_ONLY_INPUT)
        return value
