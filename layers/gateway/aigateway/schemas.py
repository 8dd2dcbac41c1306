"""Request bodies of the native generation routes: chat, images (with `size`, `quality`,
`numImages`, `style`, `storage`) and embeddings; field rules in docs/api.md.

Unknown keys are dropped, not rejected. Field names are the SDK's camelCase at
the top level and OpenAI's snake_case inside messages and tools, exactly as callers send them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return value


# PostgreSQL text cannot hold NUL: a string that is stored is refused with a 400 naming it, not a 500.
NoNul = AfterValidator(_no_nul)
ModelId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), NoNul]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


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


class ChatRequest(_Lenient):
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


class ImageRef(_Lenient):
    url: Annotated[str, StringConstraints(min_length=1)]


class ImageRequest(_Lenient):
    model: ModelId
    prompt: Annotated[str, StringConstraints(min_length=1)]
    images: list[ImageRef] | None = Field(default=None, max_length=8)
    size: Annotated[str, StringConstraints(pattern=r"^\d{2,5}x\d{2,5}$")] | None = None
    quality: Literal["standard", "hd"] | None = None
    numImages: int | None = Field(default=None, ge=1)
    style: Literal["vivid", "natural"] | None = None
    storage: bool | None = None


class EmbeddingsRequest(_Lenient):
    model: ModelId
    input: str | list[str]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=0)
