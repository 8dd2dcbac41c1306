"""Chat completions: decide the deterministic answer once (a :class:`ChatPlan`), then render it.

One plan feeds both the non-stream body and the stream frames, so the two modes return the
same text, tool calls and usage for the same request. What the answer is:

* **text**: ``"Simulated reply to: <last user text, whitespace-collapsed, cut at 60 chars>"``, plus
  ``" I saw N images."`` when the last user message has ``image_url`` parts and ``" I read <name>."``
  per ``file`` part; after a ``role: tool`` message, ``"Simulated reply using the tool result: ..."``.
  Padded with filler words to at least ``x-sim-chunks`` words (default 5) and split into that many
  chunks (the first without, the others with a leading space). ``max_tokens`` /
  ``max_completion_tokens`` smaller than the word count truncates it (``finish_reason: "length"``);
  ``stop`` sequences cut it at the first occurrence (``finish_reason: "stop"``; :mod:`.decoding`,
  which also gives OpenAI-shaped ``logprobs`` per token when asked).
  ``response_format`` ``json_object`` / ``json_schema`` gives a JSON object instead (built from the
  schema's properties), split by characters.
* **tool calls** when ``tools`` has functions and ``tool_choice`` asks for one this turn (see
  :mod:`.tools`: ``"auto"`` until a tool result is last, ``"required"`` and a named function on
  every turn, ``"none"`` never): one call to the first (or the named) tool, or ``x-sim-tool-calls``
  calls cycling through the tools unless ``parallel_tool_calls`` is false.
* **image** when ``modalities`` contains ``"image"``: content ``"Here is your image."`` and one PNG
  data URL in ``images`` (see :mod:`.images`).
* ``:thinking`` model variant, or a ``reasoning`` / ``reasoning_effort`` request field that is not
  ``none``: a reasoning text (``message.reasoning`` / ``delta.reasoning``; hidden but still counted
  when ``reasoning.exclude`` is true).
* ``plugins: [{"id": "web"}]``, an ``openrouter:web_search`` tool or the ``:online`` variant:
  ``url_citation`` annotations (``max_results`` of them, default 2, at most 10).
* ``plugins: [{"id": "file-parser"}]`` with ``file`` parts: one ``file`` annotation per file.

Token counts and cost follow :mod:`.usage`; :mod:`.render` encodes the plan for the wire.
"""

from __future__ import annotations

import hashlib
import random
import string
import time
import zlib
from dataclasses import dataclass, field
from itertools import cycle, islice
from typing import Any

import orjson

from .catalog import provider_name
from .controls import Controls
from .decoding import cut_at_stop, stop_sequences, token_logprobs, wants_logprobs
from .errors import SimError, error_body
from .images import image_data_url, image_size
from .tools import plan_tool_calls, sample
from .usage import IMAGE_OUTPUT_TOKENS, IMAGE_PART_TOKENS, MESSAGE_OVERHEAD, TOOL_CALL_TOKENS, chat_usage

__all__ = [
    "ChatPlan",
    "Prompt",
    "generation_id",
    "plan_chat",
    "read_prompt",
]

_ALNUM = string.ascii_letters + string.digits
_FILLER = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor".split()
_SNIPPET_CHARS = 60
_MAX_CITATIONS = 10
_IMAGE_TEXT = "Here is your image."


def generation_id(now: int | None = None) -> str:
    """``gen-<unix seconds>-<20 alphanumerics>``, the shape of OpenRouter generation ids."""
    return f"gen-{int(time.time()) if now is None else now}-{''.join(random.choices(_ALNUM, k=20))}"


def _bad_request(message: str) -> SimError:
    return SimError(400, error_body(400, message))


@dataclass(slots=True)
class Prompt:
    """What the answer depends on, read from ``messages`` in one pass."""

    tokens: int = 0
    last_role: str = "user"
    last_user_text: str = ""
    last_tool_text: str = ""
    called: set[str] = field(default_factory=set)  # tools the assistant already called
    images: int = 0
    files: list[tuple[str, str]] = field(default_factory=list)


def _content(content: object) -> tuple[str, int, list[tuple[str, str]]]:
    """(text, image part count, [(file name, file data)]) of one message's content."""
    if isinstance(content, str):
        return content, 0, []
    if not isinstance(content, list):
        return "", 0, []
    texts: list[str] = []
    images = 0
    files: list[tuple[str, str]] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            images += 1
        elif kind == "file" and isinstance(part.get("file"), dict):
            info = part["file"]
            name = info.get("filename") or info.get("file_id") or "document.pdf"
            files.append((str(name), str(info.get("file_data") or info.get("file_id") or "")))
    return " ".join(texts), images, files


def read_prompt(messages: object) -> Prompt:
    """Count prompt tokens (see :mod:`.usage`) and find the last user / tool message."""
    if not isinstance(messages, list) or not messages:
        raise _bad_request("messages: at least one message is required")
    prompt = Prompt()
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _bad_request(f"messages[{index}]: expected an object with a string role")
        text, images, files = _content(message.get("content"))
        prompt.tokens += len(text.split()) + MESSAGE_OVERHEAD + IMAGE_PART_TOKENS * images
        role = message["role"]
        prompt.last_role = role
        if role == "user":
            prompt.last_user_text, prompt.images, prompt.files = text, images, files
        elif role == "tool":
            prompt.last_tool_text = text
        elif role == "assistant" and isinstance(message.get("tool_calls"), list):
            for call in message["tool_calls"]:
                fn = call.get("function") if isinstance(call, dict) else None
                name = fn.get("name") if isinstance(fn, dict) else None
                if isinstance(name, str):
                    prompt.called.add(name)
    return prompt


@dataclass(slots=True)
class ChatPlan:
    """The complete deterministic answer to one chat request."""

    gen_id: str
    created: int
    model: str
    provider: str
    content: str
    chunks: list[str]
    reasoning: str | None
    reasoning_chunks: list[str]
    tool_calls: list[tuple[str, str, str]]  # (id, name, arguments JSON)
    annotations: list[dict[str, Any]]
    images: list[dict[str, Any]]
    finish_reason: str
    usage: dict[str, Any]
    logprobs: list[list[dict[str, Any]]] | None = None  # per chunk, when `logprobs: true`


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > _SNIPPET_CHARS:
        flat = flat[:_SNIPPET_CHARS].rstrip() + "..."
    return flat or "(no text)"


def _split_words(words: list[str], count: int) -> list[str]:
    """Split into ``count`` chunks whose concatenation is ``" ".join(words)``."""
    count = max(1, min(count, len(words)))
    size, extra = divmod(len(words), count)
    chunks: list[str] = []
    start = 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        chunks.append((" " if i else "") + " ".join(words[start:end]))
        start = end
    return chunks


def _split_chars(text: str, count: int) -> list[str]:
    count = max(1, min(count, len(text)))
    bounds = [len(text) * i // count for i in range(count + 1)]
    return [text[bounds[i] : bounds[i + 1]] for i in range(count)]


def _plugin(body: dict[str, Any], plugin_id: str) -> dict[str, Any] | None:
    plugins = body.get("plugins")
    if not isinstance(plugins, list):
        return None
    for plugin in plugins:
        if isinstance(plugin, dict) and plugin.get("id") == plugin_id and plugin.get("enabled", True) is not False:
            return plugin
    return None


def _web_results(body: dict[str, Any], variant: str) -> int:
    """How many url_citation annotations to return (0 = no web search)."""
    plugin = _plugin(body, "web")
    tools = body.get("tools")
    server_tool = isinstance(tools, list) and any(
        isinstance(t, dict) and t.get("type") == "openrouter:web_search" for t in tools
    )
    if plugin is None and variant != "online" and not server_tool:
        return 0
    wanted = plugin.get("max_results") if plugin else None
    if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > 0:
        return min(wanted, _MAX_CITATIONS)
    return 2


def _wants_reasoning(body: dict[str, Any], variant: str) -> bool:
    if variant == "thinking":
        return True
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning:
        return reasoning.get("enabled", True) is not False and reasoning.get("effort") != "none"
    effort = body.get("reasoning_effort")
    return isinstance(effort, str) and effort != "none"


def _max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def plan_chat(body: dict[str, Any], prompt: Prompt, model: str, controls: Controls) -> ChatPlan:
    """Decide the whole answer for ``model`` (the one that serves after fallbacks)."""
    variant = model.partition(":")[2]
    created = int(time.time())
    snippet = _snippet(prompt.last_user_text)
    finish = "stop"
    images: list[dict[str, Any]] = []
    tool_calls: list[tuple[str, str, str]] = []
    image_tokens = 0

    modalities = body.get("modalities")
    if isinstance(modalities, list) and "image" in modalities:
        config = body.get("image_config")
        width, height = image_size(config.get("aspect_ratio") if isinstance(config, dict) else None)
        colour = zlib.crc32(prompt.last_user_text.encode())
        url = image_data_url(width, height, colour, controls.image_bytes)
        images = [{"type": "image_url", "image_url": {"url": url}}]
        image_tokens = IMAGE_OUTPUT_TOKENS * len(images)
        content = _IMAGE_TEXT
        chunks = _split_words(content.split(), controls.chunks)
    else:
        tool_calls = plan_tool_calls(body, prompt.last_role, prompt.called, controls.tool_calls)
        if tool_calls:
            content, chunks, finish = "", [], "tool_calls"
        else:
            content, chunks, finish = _text_reply(body, prompt, snippet, controls)
            stopped = cut_at_stop(chunks, stop_sequences(body))
            if stopped is not None:
                chunks, finish = stopped, "stop"
                content = "".join(chunks)
    asked, top = wants_logprobs(body)
    logprobs = [token_logprobs(chunk, top) for chunk in chunks] if asked else None

    reasoning: str | None = None
    reasoning_chunks: list[str] = []
    reasoning_tokens = 0
    if _wants_reasoning(body, variant):
        words = f"The user asked: {snippet} A short direct answer fits best.".split()
        reasoning_tokens = len(words)
        settings = body.get("reasoning")
        if not (isinstance(settings, dict) and settings.get("exclude") is True):
            reasoning = " ".join(words)
            reasoning_chunks = _split_words(words, 2)

    annotations: list[dict[str, Any]] = []
    citations = _web_results(body, variant)
    for i in range(citations):
        annotations.append(
            {
                "type": "url_citation",
                "url_citation": {
                    "url": f"https://example.com/sim-search/{i + 1}",
                    "title": f"Simulated search result {i + 1}",
                    "content": f"Simulated content of search result {i + 1} for: {snippet}",
                    "start_index": 0,
                    "end_index": len(content),
                },
            }
        )
    if prompt.files and _plugin(body, "file-parser") is not None:
        for name, data in prompt.files:
            digest = hashlib.sha256(data.encode()).hexdigest()
            parsed = [{"type": "text", "text": f"Simulated parsed text of {name}."}]
            annotations.append({"type": "file", "file": {"hash": digest, "name": name, "content": parsed}})

    completion = len(content.split()) + reasoning_tokens + TOOL_CALL_TOKENS * len(tool_calls) + image_tokens
    usage = chat_usage(
        prompt.tokens,
        completion,
        reasoning_tokens=reasoning_tokens,
        image_tokens=image_tokens,
        web_search_requests=1 if citations else 0,
    )
    return ChatPlan(
        gen_id=generation_id(created),
        created=created,
        model=model,
        provider=provider_name(model),
        content=content,
        chunks=chunks,
        reasoning=reasoning,
        reasoning_chunks=reasoning_chunks,
        tool_calls=tool_calls,
        annotations=annotations,
        images=images,
        finish_reason=finish,
        usage=usage,
        logprobs=logprobs,
    )


def _text_reply(body: dict[str, Any], prompt: Prompt, snippet: str, controls: Controls) -> tuple[str, list[str], str]:
    """(content, chunks, finish_reason) of a plain-text or JSON answer."""
    if prompt.last_role == "tool":
        text = f"Simulated reply using the tool result: {_snippet(prompt.last_tool_text)}"
    else:
        text = f"Simulated reply to: {snippet}"
    if prompt.images:
        text += f" I saw {prompt.images} image{'s' if prompt.images != 1 else ''}."
    for name, _ in prompt.files:
        text += f" I read {name}."

    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in ("json_object", "json_schema"):
        assert isinstance(response_format, dict)
        schema = (response_format.get("json_schema") or {}).get("schema") if kind == "json_schema" else None
        value = sample(schema) if isinstance(schema, dict) else {"reply": text}
        content = orjson.dumps(value).decode()
        return content, _split_chars(content, controls.chunks), "stop"

    words = text.split()
    if len(words) < controls.chunks:
        words.extend(islice(cycle(_FILLER), controls.chunks - len(words)))
    finish = "stop"
    limit = _max_tokens(body)
    if limit is not None and limit < len(words):
        words, finish = words[:limit], "length"
    return " ".join(words), _split_words(words, controls.chunks), finish
