"""Streaming client: raw asyncio sockets, one timestamp per SSE event, per socket read.

Each worker keeps one HTTP/1.1 connection and sends streamed chat requests back to back
until the deadline. For every response it decodes the chunked body as bytes arrive and
records, for each *content* event (the gateway's `{"chunk": ...}`, or a direct upstream
`choices[0].delta.content`), the time since the request was written and the index of the
socket read that completed it. From that the runner derives time to first chunk, per-chunk
arrival times, inter-arrival gaps and whether two upstream chunks ever arrived merged:

* merged into one event: a stream carrying fewer content events than `x-sim-chunks`;
* merged in arrival: two content events completed by the same socket read, or arriving
  closer together than a quarter of the simulator's pacing.

Workers start staggered over SPREAD_S (one stream's length), so the target sees a steady
concurrency with upstream chunks arriving spread over time, as independent callers would
send them; started all at once, 64 streams would run in lockstep and every 20 ms tick would
deliver 64 chunks in one burst (a thundering herd no real traffic has).

Prints one JSON object; its own CPU time is included so the runner can show the client
cost less than the process under test.

As a script:
    python streamclient.py URL BODY_FILE CONCURRENCY DURATION_S MIN_STREAMS SPREAD_S [HEADER: VALUE ...]
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson


def _is_content(data: bytes) -> bool:
    if data == b"[DONE]":
        return False
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(event, dict):
        return False
    if "chunk" in event:  # the gateway's native stream
        return True
    for choice in event.get("choices") or ():  # an OpenAI/OpenRouter chunk
        content = (choice.get("delta") or {}).get("content")
        if isinstance(content, str) and content:
            return True
    return False


class _Stream:
    """Incremental chunked-transfer + SSE decoder for one response body."""

    def __init__(self) -> None:
        self.raw = b""
        self.sse = b""
        self.finished = False
        self.events: list[tuple[float, int]] = []  # (ms since send, read index) per content event

    def feed(self, data: bytes, at_ms: float, read_index: int) -> None:
        self.raw += data
        while not self.finished:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                break
            size = int(self.raw[:line_end].split(b";")[0], 16)
            if size == 0:  # last chunk: "0\r\n\r\n" (no trailers here)
                self.finished = len(self.raw) >= line_end + 4
                break
            if len(self.raw) < line_end + 2 + size + 2:
                break
            self.sse += self.raw[line_end + 2 : line_end + 2 + size]
            self.raw = self.raw[line_end + 2 + size + 2 :]
        while True:
            end = self.sse.find(b"\n\n")
            if end < 0:
                break
            block, self.sse = self.sse[:end], self.sse[end + 2 :]
            for line in block.split(b"\n"):
                if line.startswith(b"data:") and _is_content(line[5:].strip()):
                    self.events.append((at_ms, read_index))


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> dict[str, Any]:
    t0 = time.perf_counter()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    if b"transfer-encoding: chunked" not in head.lower():
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        return {"status": status, "events": []}
    stream = _Stream()
    reads = 0
    while not stream.finished:
        data = await reader.read(65536)
        if not data:
            raise ConnectionError("connection closed mid-stream")
        reads += 1
        stream.feed(data, (time.perf_counter() - t0) * 1000, reads)
    return {"status": status, "events": stream.events}


async def _worker(
    host: str, port: int, request: bytes, deadline: float, min_streams: int, delay_s: float, out: list
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    await asyncio.sleep(delay_s)
    done = 0
    try:
        while time.perf_counter() < deadline or done < min_streams:
            out.append(await _one(reader, writer, request))
            done += 1
    finally:
        writer.close()


async def main(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: float,
    min_streams: int,
    spread_s: float,
    headers: dict[str, str],
) -> dict[str, Any]:
    """Run `concurrency` workers; worker k starts k * spread_s / concurrency seconds in (module docstring)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    per_worker = max(1, -(-min_streams // concurrency))
    await asyncio.gather(
        *(
            _worker(host, port, request, started + duration_s, per_worker, k * spread_s / concurrency, results)
            for k in range(concurrency)
        )
    )
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "elapsed_s": time.perf_counter() - started,
        "self_cpu_s": ru.ru_utime + ru.ru_stime,
        "streams": results,
    }


if __name__ == "__main__":
    _url, _body_file, _conc, _dur, _min, _spread, *_hdrs = sys.argv[1:]
    _headers = dict(h.split(": ", 1) for h in _hdrs)
    _coro = main(_url, Path(_body_file).read_bytes(), int(_conc), float(_dur), int(_min), float(_spread), _headers)
    try:
        import uvloop

        _result = uvloop.run(_coro)
    except ImportError:
        _result = asyncio.run(_coro)
    sys.stdout.write(json.dumps(_result))
