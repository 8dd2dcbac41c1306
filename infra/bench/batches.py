"""The batch row of the benchmark: 1,000 chat items as one batch vs the same 1,000 sent by a client.

Both run against the bench stack's gateway (run.py `Stack`: everything on, limits admitting every
call, usage rows and quota charges written): once as one `POST /api/ai/batches` run by the local
in-process worker (BATCH_LOCAL_CONCURRENCY, 16 by default), timed from the submit to the batch's
`completed`; once as 1,000 `POST /api/ai/chat/completion` from an asyncio client at concurrency 16.
Reported: wall time of each, and the gateway process's CPU per item (its /proc counters before and
after, so the poll of the batch's state is included in the batch's figure).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import httpx

from procs import tree_cpu

ITEMS = 1000
CONCURRENCY = 16


def _body(model: str, text: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


async def _client_run(url: str, token: str, model: str, text: str) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(ITEMS):
        queue.put_nowait(i)
    failures = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal failures
            while not queue.empty():
                queue.get_nowait()
                r = await client.post("/api/ai/chat/completion", json=_body(model, text))
                failures += r.status_code != 200

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        wall = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{failures} of {ITEMS} client calls failed")
    return wall


def _batch_run(url: str, token: str, model: str, text: str) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    items = [{"customId": f"i{i}", "type": "chat", "body": _body(model, text)} for i in range(ITEMS)]
    start = time.perf_counter()
    req = urllib.request.Request(url + "/api/ai/batches", json.dumps({"items": items}).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=60) as resp:
        batch_id = json.loads(resp.read())["id"]
    while True:
        time.sleep(0.05)
        with urllib.request.urlopen(urllib.request.Request(url + f"/api/ai/batches/{batch_id}", headers=headers)) as r:
            state = json.loads(r.read())
        if state["status"] == "completed":
            break
    wall = time.perf_counter() - start
    if state["counts"]["done"] != ITEMS:
        raise RuntimeError(f"batch ended with {state['counts']}")
    return wall


def measure(gw_url: str, gw_pid: int, token: str, model: str, text: str) -> dict[str, Any]:
    cpu0 = tree_cpu(gw_pid)
    client_wall = asyncio.run(_client_run(gw_url, token, model, text))
    cpu1 = tree_cpu(gw_pid)
    batch_wall = _batch_run(gw_url, token, model, text)
    cpu2 = tree_cpu(gw_pid)
    return {
        "items": ITEMS,
        "concurrency": CONCURRENCY,
        "client_wall_s": round(client_wall, 3),
        "batch_wall_s": round(batch_wall, 3),
        "client_gateway_cpu_ms_per_item": round((cpu1 - cpu0) * 1000 / ITEMS, 3),
        "batch_gateway_cpu_ms_per_item": round((cpu2 - cpu1) * 1000 / ITEMS, 3),
    }


def table(res: dict[str, Any]) -> list[str]:
    c = res["concurrency"]
    return [
        "",
        f"Batches ({res['items']} chat items, concurrency {c}: client calls vs one batch)",
        "| path | wall s | gateway CPU ms/item |",
        "|---|---|---|",
        f"| client, {c} at a time | {res['client_wall_s']:.2f} | {res['client_gateway_cpu_ms_per_item']:.2f} |",
        f"| batch, local worker x{c} | {res['batch_wall_s']:.2f} | {res['batch_gateway_cpu_ms_per_item']:.2f} |",
    ]
