"""No lost usage: the database goes away mid-request, the answer still arrives, the row lands later."""

from __future__ import annotations

import time
from typing import Any

from aigateway.local import EmbeddedPostgres

from tests.support import SQL, MakeGateway, sse_events

MODEL = "openai/gpt-4o-mini"


def test_database_down_mid_stream_then_back(
    make_gateway: MakeGateway, pg: EmbeddedPostgres, sql: SQL, tmp_path: Any
) -> None:
    gw = make_gateway(home=tmp_path)
    gw.services.usage.retry_interval_s = 0.2
    gw.enable(MODEL)
    chunks = 0
    try:
        with gw.client.stream(
            "POST",
            "/api/ai/chat/completion",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True},
            headers={**gw.user(sub="spooled"), "x-sim-chunks": "6", "x-sim-chunk-delay-ms": "100"},
        ) as r:
            for event in sse_events(r):
                if "chunk" in event:
                    chunks += 1
                    if chunks == 1:
                        pg.stop()  # the database disappears while the answer is still streaming
                last = event
        assert chunks == 6 and last["done"] is True  # the caller got the whole paid-for answer
        deadline = time.monotonic() + 5
        while not list((tmp_path / "usage-spool").glob("*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list((tmp_path / "usage-spool").glob("*.json")), "the record was not spooled"
    finally:
        pg.restart()
    deadline = time.monotonic() + 15
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = sql("SELECT * FROM ai.usage WHERE user_id = 'spooled'")
        if rows:
            break
        time.sleep(0.2)
    assert len(rows) == 1 and rows[0]["output_tokens"] > 0
    assert not list((tmp_path / "usage-spool").glob("*.json"))
