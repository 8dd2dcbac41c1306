"""The floor of the gateway's own stack, served for the benchmark beside the gateway.

A bare ASGI app on the same server as gateway_server.py (uvicorn, uvloop, httptools, one
worker) and the same upstream client (aiohttp) that forwards the benchmark's chat request
and does nothing else: no framework, no auth, no configuration, no policy, no response shape.

* `--metered` adds what no metering gateway can skip, with the gateway's own code: the
  admission statement (`store.limits.admit`: minute counters, quota sums, the hold) before
  the upstream call and the durable settle (`store.usage.settle`: usage row, quota charges,
  hold release, committed with the WAL flushed) before the last byte, on the gateway's
  `Database` with prepared statements and its group commit, as the local server runs them.

So `gateway - metered floor` is what the gateway's checks and framework cost, and
`metered floor - direct` is the least any gateway that counts every call durably can add on
this host: the target the c=1 latency goal is held against.

Usage: taskset -c 1 python infra/bench/floor_server.py --port 7132 [--metered]
(environment: OPENROUTER_BASE_URL, OPENROUTER_API_KEY, DATABASE_URL with --metered)
"""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

import aiohttp
import orjson

from gateway_server import serve  # this folder is the script's, so on its path

SUBJECT = "user:bench-floor"  # its own counters: the gateway's user is not charged twice
GENEROUS = {"u_day": 10**15, "u_month": 10**15, "u_spend": 1e9, "p_day": 10**15, "p_month": 10**15, "p_spend": 1e9}
SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly."  # what the gateway prepends (run.py)


class Floor:
    def __init__(self, metered: bool) -> None:
        self.upstream = os.environ["OPENROUTER_BASE_URL"].rstrip("/") + "/chat/completions"
        self.headers = {
            "Authorization": f"Bearer {os.environ['OPENROUTER_API_KEY']}",
            "Content-Type": "application/json",
        }
        self.session: aiohttp.ClientSession | None = None
        self.db: Any = None
        if metered:
            from aigateway.db import Database, GroupCommit
            from aigateway.store import usage

            url = os.environ["DATABASE_URL"]
            self.db = Database(lambda: url, schema="ai", pool_size=4, prepare=True)  # as the local server
            self.settles: GroupCommit[usage.UsageRecord] = GroupCommit(lambda rows: usage.settle(self.db, rows))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["method"] == "GET":  # the runner's readiness probe
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = orjson.loads(body)
        payload = {
            "model": request["model"],
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, *request["messages"]],
            "temperature": 0.7,
            "max_tokens": 4096,
        }
        hold = await self._admit() if self.db is not None else None
        assert self.session is not None
        async with self.session.post(self.upstream, data=orjson.dumps(payload), headers=self.headers) as resp:
            raw = await resp.read()
        answer = orjson.loads(raw)
        if self.db is not None:
            await self._settle(answer, hold)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    async def _admit(self) -> int | None:
        from aigateway.store import limits

        verdict = await limits.admit(
            self.db,
            subject=SUBJECT,
            user_rate=1_000_000,
            project_rate=1_000_000,
            quotas=GENEROUS,
            actor="bench-floor",
            ip="127.0.0.1",
            details={},
            hold_tokens=4200,
            hold_spend=0.01,
        )
        return verdict.hold_id

    async def _settle(self, answer: dict[str, Any], hold: int | None) -> None:
        from aigateway.store import usage

        used = answer.get("usage") or {}
        record = usage.UsageRecord(
            request_id=str(uuid.uuid4()),
            model_id=answer.get("model") or "unknown",
            input_tokens=used.get("prompt_tokens"),
            output_tokens=used.get("completion_tokens"),
            user_id="bench-floor",
            cost_usd=used.get("cost"),
            key_source="env",
            latency_ms=1,
            charge_subject=SUBJECT,
            hold_id=hold,
        )
        await self.settles.submit(record)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.session = aiohttp.ClientSession()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                if self.db is not None:
                    await self.db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--metered", action="store_true", help="admit and settle each call as the gateway does")
    args = parser.parse_args()
    serve(Floor(args.metered), args.host, args.port)


if __name__ == "__main__":
    main()
