"""Closed-loop non-stream load: wrk (Debian's `wrk` package) or, without it, an asyncio client.

wrk is C and uses a few percent of a core at the gateway's rates, so it is never the
bottleneck; each run is 1 thread and N keep-alive connections (N = the concurrency), and a
Lua `done()` hook prints the figures as JSON. The asyncio fallback (raw sockets, uvloop) is
the same closed loop; its own CPU time is reported so a reader can check it stayed cheaper
than the process under test.

As a script (the fallback, run pinned by the runner):
    python loadgen.py URL BODY_FILE CONNECTIONS DURATION_S [HEADER: VALUE ...]
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import percentile, pinned

_LUA = """
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
%(headers)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"non2xx":%%d,"connect_errors":%%d,"read_errors":%%d,' ..
    '"write_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _lua(body: bytes, headers: dict[str, str]) -> str:
    lines = "\n".join(f'wrk.headers["{k}"] = [==[{v}]==]' for k, v in headers.items())
    return _LUA % {"body": body.decode(), "headers": lines}


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run(
    url: str, body: bytes, headers: dict[str, str], connections: int, duration_s: float, core: int | None
) -> dict[str, float | int | str | None]:
    """One closed-loop run; latencies in ms, `rps` = completed requests per second."""
    cpu0 = _children_cpu()
    if wrk_path():
        result = _run_wrk(url, body, headers, connections, duration_s, core)
    else:
        result = _run_fallback(url, body, headers, connections, duration_s, core)
    result["loadgen_cpu_s"] = round(_children_cpu() - cpu0, 3)
    return result


def _run_wrk(
    url: str, body: bytes, headers: dict[str, str], connections: int, duration_s: float, core: int | None
) -> dict[str, float | int | str | None]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_lua(body, headers))
        script = fh.name
    try:
        seconds = max(1, round(duration_s))  # wrk takes whole seconds
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, url]
        out = subprocess.run(pinned(cmd, core), capture_output=True, text=True, timeout=duration_s + 30, check=False)
    finally:
        os.unlink(script)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    raw = json.loads(line[len("BENCH_JSON ") :])
    secs = raw["duration_us"] / 1e6
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {
        "tool": "wrk",
        "requests": raw["requests"],
        "rps": round(raw["requests"] / secs, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": round(raw["mean_us"] / 1000, 3),
        "non2xx": raw["non2xx"],
        "socket_errors": errors,
    }


def _run_fallback(
    url: str, body: bytes, headers: dict[str, str], connections: int, duration_s: float, core: int | None
) -> dict[str, float | int | str | None]:
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as fh:
        fh.write(body)
        body_file = fh.name
    try:
        cmd = [sys.executable, __file__, url, body_file, str(connections), str(duration_s)]
        cmd += [f"{k}: {v}" for k, v in headers.items()]
        out = subprocess.run(pinned(cmd, core), capture_output=True, text=True, timeout=duration_s + 60, check=True)
    finally:
        os.unlink(body_file)
    result: dict[str, float | int | str | None] = json.loads(out.stdout)
    return result


# ---- the asyncio fallback client ------------------------------------------------------------


async def _worker(
    host: str, port: int, request: bytes, deadline: float, latencies: list[float], status: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            code = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - t0) * 1000)
            status.append(code)
    finally:
        writer.close()


async def _main(url: str, body: bytes, connections: int, duration_s: float, headers: dict[str, str]) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path or '/'} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    latencies: list[float] = []
    status: list[int] = []
    started = time.perf_counter()
    deadline = started + duration_s
    await asyncio.gather(*(_worker(host, port, request, deadline, latencies, status) for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "tool": "asyncio",
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else None,
        "mean_ms": round(sum(latencies) / len(latencies), 3) if latencies else None,
        "non2xx": sum(1 for s in status if not 200 <= s < 400),
        "socket_errors": 0,
        "self_cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
    }


if __name__ == "__main__":
    _url, _body_file, _conns, _dur, *_hdrs = sys.argv[1:]
    _headers = dict(h.split(": ", 1) for h in _hdrs)
    _coro = _main(_url, Path(_body_file).read_bytes(), int(_conns), float(_dur), _headers)
    try:
        import uvloop

        _result = uvloop.run(_coro)
    except ImportError:
        _result = asyncio.run(_coro)
    print(json.dumps(_result))
