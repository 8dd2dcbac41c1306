"""Every piece of text a caller sends upstream, for the content policy to scan.

Why this is wider than "the user messages": the model reads all of it. Caller `system` messages
(and `developer` ones, which arrive here as `system`), tool names, descriptions and parameter
schemas, tool-call arguments, tool results, message `name`s, text files (a `file` part whose data
URL is text), the web-search prompt and the OpenAI dialect's `response_format` and plugins all
reach the model, so a deny-list that skipped any of them would be bypassed by moving the text
there. Only the admin's own system prompt is left out (it is not the caller's).

The pieces come back as a list; policy.check_content also scans them joined, so a phrase split
over several parts or messages is still one phrase.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

if TYPE_CHECKING:
    from .schemas import ChatRequest, ContentPart, Message

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/x-yaml", "application/yaml")
_SCANNED_EXTRAS = ("response_format", "plugins")


def strings(value: Any, out: list[str]) -> None:
    """Every string in a JSON value, keys included (a schema's property names reach the model too)."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            out.append(str(k))
            strings(v, out)
    elif isinstance(value, list):
        for v in value:
            strings(v, out)


def data_url_text(url: str) -> str | None:
    """The text of a `data:text/...` URL (base64 or percent-encoded), None for anything else."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep:
        return None
    media, *params = head.split(";")
    if not media.lower().startswith(_TEXT_TYPES):
        return None
    try:
        raw = base64.b64decode(data, validate=False) if "base64" in params else unquote_to_bytes(data)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", "replace")


def _part_texts(part: ContentPart, out: list[str]) -> None:
    if part.type == "text":
        out.append(part.text)
    elif part.type == "file":
        if part.file.filename:
            out.append(part.file.filename)
        text = data_url_text(part.file.file_data or "")
        if text is not None:
            out.append(text)


def message_texts(m: Message, out: list[str]) -> None:
    content = m.content
    if isinstance(content, str):
        out.append(content)
    elif isinstance(content, list):
        for part in content:
            _part_texts(part, out)
    elif isinstance(content, dict):
        strings(content, out)
    if m.name:
        out.append(m.name)
    for call in m.tool_calls or ():
        out.append(call.function.name)
        out.append(call.function.arguments)


def chat_texts(req: ChatRequest, extra: dict[str, Any] | None = None) -> list[str]:
    """The caller's text in a chat request (the admin's system prompt is added later, not here)."""
    out: list[str] = []
    for m in req.messages:
        message_texts(m, out)
    for tool in req.tools or ():
        out.append(tool.function.name)
        if tool.function.description:
            out.append(tool.function.description)
        if tool.function.parameters:
            strings(tool.function.parameters, out)
    if req.toolChoice is not None and not isinstance(req.toolChoice, str):
        out.append(req.toolChoice.function.name)
    if req.webSearch and req.webSearch.searchPrompt:
        out.append(req.webSearch.searchPrompt)
    for key in _SCANNED_EXTRAS:
        if extra and key in extra:
            strings(extra[key], out)
    return [t for t in out if t]
