"""Per-request behaviour controls, read from ``x-sim-*`` request headers.

Tests and benchmarks choose what the simulator does for one request by sending these headers
(all optional; integers unless noted). They are the simulator's test/bench API:

``x-sim-latency-ms: N``
    Wait N ms before answering. Non-stream: before the response. Stream: after the first
    ``: OPENROUTER PROCESSING`` comment and before the first data frame, sending a keep-alive
    comment every ``x-sim-keepalive-ms`` ms (default 1000) while waiting.
``x-sim-keepalive-ms: N``
    Interval of keep-alive comments during ``x-sim-latency-ms`` (stream only).
``x-sim-chunk-delay-ms: N``
    Wait N ms before every stream data frame except the first (the finish, usage and ``[DONE]``
    frames included).
``x-sim-chunks: N``
    Number of content chunks of a text reply (default 5). The reply text is padded with filler
    words to at least N words, for stream and non-stream alike, so both return the same text.
``x-sim-tool-calls: N``
    Number of parallel tool calls (cycling through the request's tools) unless the request says
    ``parallel_tool_calls: false``. Default 1.
``x-sim-fail-status: S``
    Answer with HTTP status S and OpenRouter's error body for S (``Retry-After`` on 429 and 503).
``x-sim-retry-after: N``
    The ``Retry-After`` value (seconds) for simulated 429/503 answers (default 1).
``x-sim-fail-times: K`` and ``x-sim-request-key: <string>``
    Fail only the first K requests carrying that key (one counter per key, shared counter when the
    key header is absent), then succeed. With ``x-sim-fail-times`` but no ``x-sim-fail-status``
    the status is 502. Without ``x-sim-fail-times``, ``x-sim-fail-status`` fails every request.
``x-sim-fail-after-chunks: K``
    Stream only: after K body frames (reasoning, content or tool-call fragments) emit the
    mid-stream error event and close without ``[DONE]``.
``x-sim-garbage: 1``
    Non-stream only: HTTP 200 whose body is not valid JSON.
``x-sim-error-200: 1``
    Non-stream only: HTTP 200 whose JSON body is an OpenRouter error (``{"error":{"code":502,...}}``).
``x-sim-image-bytes: N``
    Pad generated PNGs (private ancillary chunk) so each raw PNG is about N bytes.
``x-sim-embedding-dims: N``
    Embedding size when the request has no ``dimensions`` (default 1536).

A request without any ``x-sim-`` header gets the shared :data:`DEFAULT_CONTROLS` object, so the
benchmark path costs one scan of the raw header list and nothing else. A malformed value is a
400 (``SimError``) rather than silently ignored, so a typo in a test shows up at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import SimError, simple_error

__all__ = ["DEFAULT_CONTROLS", "Controls", "parse_controls"]


@dataclass(frozen=True, slots=True)
class Controls:
    """The behaviour chosen for one request (see the module docstring for each field)."""

    latency_ms: int = 0
    keepalive_ms: int = 1000
    chunk_delay_ms: int = 0
    chunks: int = 5
    tool_calls: int = 1
    fail_status: int | None = None
    retry_after: int = 1
    fail_times: int | None = None
    request_key: str = ""
    fail_after_chunks: int | None = None
    garbage: bool = False
    error_200: bool = False
    image_bytes: int | None = None
    embedding_dims: int = 1536


DEFAULT_CONTROLS = Controls()

# header name -> (field, minimum, maximum)
_INT_FIELDS: dict[str, tuple[str, int, int]] = {
    "x-sim-latency-ms": ("latency_ms", 0, 600_000),
    "x-sim-keepalive-ms": ("keepalive_ms", 1, 600_000),
    "x-sim-chunk-delay-ms": ("chunk_delay_ms", 0, 600_000),
    "x-sim-chunks": ("chunks", 1, 100_000),
    "x-sim-tool-calls": ("tool_calls", 1, 128),
    "x-sim-fail-status": ("fail_status", 100, 599),
    "x-sim-retry-after": ("retry_after", 0, 86_400),
    "x-sim-fail-times": ("fail_times", 0, 1_000_000),
    "x-sim-fail-after-chunks": ("fail_after_chunks", 0, 1_000_000),
    "x-sim-image-bytes": ("image_bytes", 0, 512 * 1024 * 1024),
    "x-sim-embedding-dims": ("embedding_dims", 1, 65_536),
}
_FLAG_FIELDS = {"x-sim-garbage": "garbage", "x-sim-error-200": "error_200"}
_FALSE = {"", "0", "false", "no", "off"}


def parse_controls(raw_headers: list[tuple[bytes, bytes]]) -> Controls:
    """Read the ``x-sim-*`` headers of an ASGI scope; the shared default when there are none."""
    found: dict[str, object] | None = None
    for name, value in raw_headers:
        if not name.startswith(b"x-sim-"):
            continue
        key = name.decode("latin-1")
        text = value.decode("latin-1").strip()
        if found is None:
            found = {}
        if key in _INT_FIELDS:
            field, low, high = _INT_FIELDS[key]
            try:
                number = int(text)
            except ValueError:
                raise SimError(400, simple_error(400, f"{key} must be an integer, got {text!r}")) from None
            if not low <= number <= high:
                raise SimError(400, simple_error(400, f"{key} must be between {low} and {high}"))
            found[field] = number
        elif key in _FLAG_FIELDS:
            found[_FLAG_FIELDS[key]] = text.lower() not in _FALSE
        elif key == "x-sim-request-key":
            found["request_key"] = text
    if found is None:
        return DEFAULT_CONTROLS
    if found.get("fail_times") is not None and found.get("fail_status") is None:
        found["fail_status"] = 502
    return replace(DEFAULT_CONTROLS, **found)  # type: ignore[arg-type]
