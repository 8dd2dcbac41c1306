"""The response and embeddings cache: what a key covers, what may be stored, and how a hit replays.

Off unless a configuration says `cache: {ttlSeconds, scope}`. A caller turns it off for one
request with `"cache": false` in the body (neither read nor written) or `Cache-Control: no-store`
(the same); `Cache-Control: no-cache` skips the lookup but stores the fresh answer.

The chat key is the SHA-256 of the final upstream payload (model, fallbacks, the admin's system
prompt, every message, temperature, max tokens, tools, response format, plugins, every
passed-through field) less the two stream switches, so a plain and a streamed request share one
entry, plus the forwarded upstream headers and the scope. With scope "user" the caller's quota
subject (a hash of the JWT subject, or of anon role, subject and address) is in the key, so no
key one caller can form reaches another caller's entry. An embedding's key is (model, dimensions,
input) and, with scope "user", the subject too.

What is stored is the upstream's own answer (OpenRouter's JSON), once, whichever dialect asked:
each dialect shapes a hit exactly as it shapes a live answer, and a streamed hit is replayed as
upstream-like chunks through the same stream shaping. Tool-call answers, empty answers, errors
and streams that did not reach their end are never stored.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .store.cache import Entry

HIT, MISS, BYPASS = "HIT", "MISS", "BYPASS"
HEADER = "X-Gateway-Cache"
MAX_TTL_S = 30 * 86_400
REPLAY_CHARS = 16  # a replayed stream's content arrives in pieces of about this many characters
_KEY_VERSION = b"aigw-cache-1\x00"
_STREAM_KEYS = ("stream", "stream_options")


class CacheSettings(BaseModel):
    """A configuration's `cache` as the admin routes accept it."""

    model_config = ConfigDict(extra="forbid")

    ttlSeconds: int = Field(ge=1, le=MAX_TTL_S)
    scope: Literal["project", "user"] = "project"


def settings_of(stored: dict[str, Any] | None) -> CacheSettings | None:
    """A configuration's stored cache settings; None (off) when absent or unreadable."""
    if not stored:
        return None
    try:
        return CacheSettings.model_validate(stored)
    except ValidationError:
        return None


@dataclass(frozen=True)
class CacheControl:
    """What the caller's request says: may the cache be read, may the answer be stored."""

    lookup: bool = True
    store: bool = True

    @classmethod
    def from_header(cls, value: str | None) -> CacheControl:
        """`Cache-Control` directives: `no-store` skips both, `no-cache` skips the lookup only."""
        if not value:
            return _DEFAULT_CONTROL
        directives = {d.strip().split("=", 1)[0].lower() for d in value.split(",")}
        if "no-store" in directives:
            return cls(lookup=False, store=False)
        if "no-cache" in directives:
            return cls(lookup=False, store=True)
        return _DEFAULT_CONTROL


_DEFAULT_CONTROL = CacheControl()


@dataclass(frozen=True)
class CachePlan:
    """The cache's part in one call: the entry's key, its lifetime, and what may happen."""

    key: bytes
    ttl_s: int
    lookup: bool
    store: bool

    @property
    def status(self) -> str:
        """The header value when the call is answered upstream."""
        return MISS if self.lookup else BYPASS


def plan_for(
    settings: CacheSettings | None, control: CacheControl, body_flag: bool | None, key: Callable[[str], bytes]
) -> CachePlan | None:
    """None when caching is off for the model; a plan (maybe a bypass) otherwise. `key(scope)`
    computes the entry's key, only when the cache is used."""
    if settings is None:
        return None
    if body_flag is False:
        return CachePlan(b"", settings.ttlSeconds, lookup=False, store=False)
    return CachePlan(key(settings.scope), settings.ttlSeconds, lookup=control.lookup, store=control.store)


def _digest(*parts: bytes) -> bytes:
    """SHA-256 of length-prefixed parts: no two different lists of parts hash alike."""
    h = hashlib.sha256(_KEY_VERSION)
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.digest()


def scope_part(scope: str, subject: str) -> bytes:
    """What the scope adds to a key: the caller's quota subject for "user", a constant for "project"."""
    return b"user\x00" + subject.encode() if scope == "user" else b"project"


def chat_key(payload: dict[str, Any], headers: dict[str, str], scope: str, subject: str) -> bytes:
    """The key of a chat answer (see the module docstring for what it covers)."""
    shaped = {k: v for k, v in payload.items() if k not in _STREAM_KEYS}
    body = orjson.dumps(shaped, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    sent = orjson.dumps(sorted((k.lower(), v) for k, v in headers.items()))
    return _digest(b"chat", body, sent, scope_part(scope, subject))


def embedding_key(model: str, dimensions: int | None, text: str, scope: str, subject: str) -> bytes:
    """The key of one input's vector: model, dimensions (0 = the model's own), input, scope."""
    dims = str(dimensions or 0).encode()
    return _digest(b"embedding", model.encode(), dims, text.encode("utf-8"), scope_part(scope, subject))


# ---- chat answers ---------------------------------------------------------------------------


def _message(upstream: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    choices = upstream.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message")
    return choice, message if isinstance(message, dict) else {}


def storable(upstream: dict[str, Any]) -> bool:
    """Only a finished text answer is stored: no tool calls, no error, some content."""
    if upstream.get("error") is not None:
        return False
    choice, message = _message(upstream)
    if message.get("tool_calls") or choice.get("finish_reason") in ("tool_calls", "error"):
        return False
    content = message.get("content")
    return isinstance(content, str) and bool(content)


def encode_answer(upstream: dict[str, Any]) -> bytes:
    """The stored form of a chat answer: the upstream's JSON as it came."""
    return orjson.dumps(upstream)


def decode_answer(body: bytes) -> dict[str, Any]:
    """A stored answer as a hit serves it: its own id and time are the live call's, not the old one's."""
    answer: dict[str, Any] = orjson.loads(body)
    answer.pop("id", None)
    answer.pop("created", None)
    return answer


def _pieces(text: str, size: int = REPLAY_CHARS) -> list[str]:
    """`text` in pieces of about `size` characters, cut after whitespace where it can be."""
    words = re.findall(r"\S+\s*|\s+", text)
    out: list[str] = []
    current = ""
    for w in words:
        current += w
        if len(current) >= size:
            out.append(current)
            current = ""
    if current:
        out.append(current)
    return out or [text]


def replay_chunks(upstream: dict[str, Any]) -> list[dict[str, Any]]:
    """A stored answer as the chunks a live stream of it would have carried: the reasoning, the
    content in pieces, the annotations, the finish, then the usage."""
    choice, message = _message(upstream)
    model = upstream.get("model")
    base: dict[str, Any] = {"object": "chat.completion.chunk", **({"model": model} if model else {})}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out: list[dict[str, Any]] = []
    reasoning = message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        out.append(chunk({"role": "assistant", "content": "", "reasoning": reasoning}))
    for i, piece in enumerate(_pieces(str(message.get("content") or ""))):
        out.append(chunk({"role": "assistant", "content": piece} if i == 0 and not out else {"content": piece}))
    if message.get("annotations"):
        out.append(chunk({"annotations": message["annotations"]}))
    out.append(chunk({}, choice.get("finish_reason") or "stop"))
    if isinstance(upstream.get("usage"), dict):
        out.append({**base, "choices": [], "usage": upstream["usage"]})
    return out


@dataclass
class StreamRecorder:
    """Collects a relayed stream into the non-streamed answer it amounts to (what is stored)."""

    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    annotations: list[Any] = field(default_factory=list)
    tool_calls: bool = False
    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        if isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                self.content.append(delta["content"])
            if isinstance(delta.get("reasoning"), str):
                self.reasoning.append(delta["reasoning"])
            if delta.get("tool_calls"):
                self.tool_calls = True
            if isinstance(delta.get("annotations"), list):
                self.annotations.extend(delta["annotations"])
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def answer(self) -> dict[str, Any] | None:
        """The answer to store, or None when the stream carried tool calls."""
        if self.tool_calls:
            return None
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content)}
        if self.reasoning:
            message["reasoning"] = "".join(self.reasoning)
        if self.annotations:
            message["annotations"] = self.annotations
        out: dict[str, Any] = {
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason or "stop"}],
        }
        if self.model:
            out["model"] = self.model
        if self.usage is not None:
            out["usage"] = self.usage
        return out


# ---- the per-process copy of hot entries ------------------------------------------------------


class HotEntries:
    """Entries this process read or stored lately, kept for at most `ttl_s` (and never past their
    own expiry), least recently used dropped past `max_bytes`.

    A repeated hit in a warm process (a Lambda environment serving the same app, the local server)
    then costs no database round trip for its lookup. The price is the configuration cache's: a
    purge takes effect at once in the process that made it and within `ttl_s` in every other.
    """

    def __init__(self, ttl_s: float, max_bytes: int = 8 * 1024 * 1024) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._items: OrderedDict[bytes, tuple[float, Entry]] = OrderedDict()
        self._bytes = 0

    def get(self, key: bytes) -> Entry | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= time.monotonic():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: bytes, entry: Entry) -> None:
        life = min(self.ttl_s, entry.expires_in_s)
        if life <= 0 or len(entry.body) > self.max_bytes:
            return
        self._drop(key)
        self._items[key] = (time.monotonic() + life, entry)
        self._bytes += len(entry.body)
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0

    def _drop(self, key: bytes) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= len(item[1].body)


# ---- embeddings -----------------------------------------------------------------------------


def _little_endian(vector: array[float]) -> array[float]:
    if sys.byteorder == "big":  # pragma: no cover - every platform we run on is little-endian
        vector = array("f", vector)
        vector.byteswap()
    return vector


def pack_vector(value: Any) -> bytes | None:
    """One upstream embedding (a float list, or base64 of little-endian float32) as float32 bytes."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            return None
        return raw if len(raw) % 4 == 0 else None
    if isinstance(value, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        return _little_endian(array("f", value)).tobytes()
    return None


def render_vector(raw: bytes, encoding: str) -> Any:
    """The stored float32 bytes as the caller asked: base64 of them, or the float list they hold."""
    if encoding == "base64":
        return base64.b64encode(raw).decode("ascii")
    vector = array("f")
    vector.frombytes(raw)
    return _little_endian(vector).tolist()
