"""`aigateway serve` on SIGTERM (`kill <pid>`, a container stop) shuts down as on Ctrl-C, in bounded
time: a stream still open is cut off after SHUTDOWN_TIMEOUT_S and settled with the tokens it had
(a usage row, or a spool record), and the embedded PostgreSQL the server started is stopped."""

from __future__ import annotations

import shutil
import signal
import threading

import httpx
import psutil
import psycopg
from aigateway.local import EmbeddedPostgres

from tests.support import ServerThread, free_port, private_dir

from .served import CHAT, Served

SHUTDOWN_S = 2


def test_sigterm_settles_the_open_stream_and_stops_the_embedded_database(simulator: ServerThread) -> None:
    base = private_dir("aigw-serve-")
    home = base / "home"
    env = {
        "OPENROUTER_API_KEY": "sk-or-v1-shutdown-test",
        "OPENROUTER_BASE_URL": simulator.url + "/api/v1",
        "SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
    }
    gw = Served(home, free_port(), env).wait_ready(timeout=180)
    pgdata = home / "pgdata"
    try:
        postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0]))
        gw.enable()
        first_chunk = threading.Event()
        outcome: list[BaseException | None] = []

        def long_stream() -> None:
            body = {"model": CHAT, "messages": [{"role": "user", "content": "long"}], "stream": True}
            headers = {**gw.user(), "x-sim-chunks": "60", "x-sim-chunk-delay-ms": "250"}  # 15 s of answer
            try:
                with httpx.stream("POST", gw.url + "/api/ai/chat/completion", json=body, headers=headers) as r:
                    for line in r.iter_lines():
                        if '"chunk"' in line:
                            first_chunk.set()
                outcome.append(None)
            except httpx.HTTPError as exc:
                outcome.append(exc)

        caller = threading.Thread(target=long_stream, daemon=True)
        caller.start()
        assert first_chunk.wait(15)
        took = gw.stop(signal.SIGTERM, timeout=60)
        caller.join(5)
        print(f"\nSIGTERM to exit: {took:.2f} s (graceful window {SHUTDOWN_S} s)")
        assert took < SHUTDOWN_S + 10
        assert gw.proc.returncode in (0, 128 + signal.SIGTERM, -signal.SIGTERM)
        assert psutil.wait_procs([postmaster], timeout=10)[1] == [], "the embedded PostgreSQL is still running"

        server = EmbeddedPostgres(pgdata)
        try:
            with psycopg.connect(server.start(), autocommit=True) as conn:
                rows = conn.execute("SELECT output_tokens FROM ai.usage").fetchall()
            spooled = list((home / "usage-spool").glob("*.json"))
            assert len(rows) + len(spooled) == 1, "the cut-off stream was neither recorded nor spooled"
            if rows:
                assert (rows[0][0] or 0) > 0
        finally:
            server.stop()
    finally:
        if gw.proc.poll() is None:
            gw.proc.kill()
        shutil.rmtree(base, ignore_errors=True)
