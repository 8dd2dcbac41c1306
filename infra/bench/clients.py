"""aiohttp vs httpx as the upstream client, measured as a Lambda environment uses it.

Each Lambda execution environment serves one request at a time, so what matters there is the
import (paid once per cold start, by the first caller that reaches the upstream), the first
request (connection set-up) and, warm, the time to the first chunk and per chunk of a stream,
one stream at a time. Both clients run in fresh CPython 3.12 processes (the runtime's version)
from the built layer (httpx installed beside it for this run only), streaming from the
OpenRouter simulator on loopback: 20 chunks, no pacing, so the figures are the client's cost.

    python infra/bench/clients.py [--runs 7] [--streams 50]

Prints one JSON object (medians over `runs` processes) and a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import asyncio, json, sys, time
client_name, url, streams = sys.argv[1], sys.argv[2], int(sys.argv[3])
body = json.dumps({"model": "openai/gpt-4o-mini", "stream": True,
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
headers = {"content-type": "application/json", "authorization": "Bearer sk-or-v1-bench", "x-sim-chunks": "20"}

async def main():
    t0 = time.perf_counter()
    if client_name == "aiohttp":
        import aiohttp
        t1 = time.perf_counter()
        session = aiohttp.ClientSession()
        async def one():
            s = time.perf_counter(); first = None; n = 0
            async with session.post(url, data=body, headers=headers) as r:
                async for line in r.content:
                    if line.startswith(b"data: {"):
                        n += 1
                        first = first or time.perf_counter() - s
            return first, time.perf_counter() - s, n
    else:
        import httpx
        t1 = time.perf_counter()
        session = httpx.AsyncClient(timeout=30)
        async def one():
            s = time.perf_counter(); first = None; n = 0
            async with session.stream("POST", url, content=body, headers=headers) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: {"):
                        n += 1
                        first = first or time.perf_counter() - s
            return first, time.perf_counter() - s, n
    first_call = await one()
    warm = [await one() for _ in range(streams)]
    out = {"import_ms": (t1 - t0) * 1000, "first_call_ms": first_call[1] * 1000,
           "ttfb_ms": statistics.median(w[0] for w in warm) * 1000,
           "per_chunk_ms": statistics.median((w[1] - w[0]) / max(1, w[2] - 1) for w in warm) * 1000,
           "chunks": warm[0][2]}
    await (session.close() if client_name == "aiohttp" else session.aclose())
    print(json.dumps(out))

import statistics
asyncio.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--streams", type=int, default=50)
    args = parser.parse_args()

    from aigateway.simulator import create_app
    from tests.lambda_runtime.bundle import build_bundle
    from tests.support import ServerThread

    bundle = build_bundle()
    extra = Path(tempfile.mkdtemp(prefix="aigw-bench-httpx-"))
    subprocess.run(
        [bundle.python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--target", str(extra), "httpx"],
        check=True,
    )
    subprocess.run([bundle.python, "-m", "compileall", "-q", str(extra)], check=True)
    sim = ServerThread(create_app()).start()
    url = sim.url + "/api/v1/chat/completions"
    env = {"PYTHONPATH": f"{bundle.layer}:{extra}", "PATH": "/usr/bin:/bin"}
    results: dict[str, list[dict[str, float]]] = {"aiohttp": [], "httpx": []}
    try:
        for _ in range(args.runs):  # interleaved, so both see the same machine
            for name in results:
                proc = subprocess.run(
                    [bundle.python, "-c", CHILD, name, url, str(args.streams)],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=True,
                )
                results[name].append(json.loads(proc.stdout))
                time.sleep(0.1)
    finally:
        sim.stop()
    summary = {
        name: {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]} for name, runs in results.items()
    }
    print(json.dumps({"runs": args.runs, "streams": args.streams, "python": bundle.python, "median": summary}))
    print(f"{'client':<10}{'import':>10}{'first call':>12}{'warm TTFB':>11}{'per chunk':>11}  (ms, median)")
    for name, s in summary.items():
        print(
            f"{name:<10}{s['import_ms']:>10.1f}{s['first_call_ms']:>12.1f}{s['ttfb_ms']:>11.2f}{s['per_chunk_ms']:>11.3f}"
        )


if __name__ == "__main__":
    main()
