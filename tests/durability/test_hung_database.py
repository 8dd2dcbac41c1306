"""A hung PostgreSQL (frozen with SIGSTOP: connections open, nothing answers) costs callers a bounded
wait, and no answered call goes uncounted.

The gateway is a real `aigateway serve` process over its own embedded PostgreSQL. Answers given
while the database is frozen are spooled before their last byte; the gateway is then killed
(SIGKILL: no shutdown, nothing flushed), the database thawed, and a new gateway replays the spool
at start-up, without a request, into usage rows and quota charges.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import psycopg
from aigateway.local import EmbeddedPostgres

from tests.support import ServerThread, free_port, wait_for

from .served import Served, freeze, thaw

OP_TIMEOUT_S = 1.5
# Per call: at most one database deadline for the usage insert, plus the spool write and the
# upstream's own time; the first call after the freeze may also wait one deadline elsewhere.
BOUND_S = 2 * OP_TIMEOUT_S + 2.0


def _gateway(home: Path, pg: EmbeddedPostgres, simulator: ServerThread) -> Served:
    env = {
        "DATABASE_URL": pg.uri,
        "OPENROUTER_API_KEY": "sk-or-v1-hung-db-test",
        "OPENROUTER_BASE_URL": simulator.url + "/api/v1",
        "CONFIG_CACHE_TTL_S": "60",  # read before the freeze, then served from memory
        "DB_OP_TIMEOUT_S": str(OP_TIMEOUT_S),
        "DB_CONNECT_TIMEOUT_S": "1",
        "USAGE_REPLAY_INTERVAL_S": "1",
    }
    return Served(home, free_port(), env).wait_ready()


def test_answers_during_a_hang_are_bounded_and_all_counted_after_restart(
    own_pg: EmbeddedPostgres, simulator: ServerThread, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    gw = _gateway(home, own_pg, simulator)
    gw.enable()
    status, _, _ = gw.chat()  # warms the configuration and limits caches; charged at answer time
    assert status == 200

    frozen = freeze(own_pg.pgdata)
    try:
        timings = []
        for stream in (False, True, False, True, False):
            status, content, took = gw.chat(stream=stream, headers={"x-sim-chunks": "3"})
            assert status == 200, content
            if stream:
                assert b'"done":true' in content
            timings.append(took)
        admin_started = time.monotonic()
        r = gw.client.get("/api/ai/usage", headers=gw.admin())  # needs the database: a 503, in time
        admin_took = time.monotonic() - admin_started
        print(
            f"\nanswered while frozen in {', '.join(f'{t:.2f}' for t in timings)} s;"
            f" admin read 503 in {admin_took:.2f} s"
        )
        assert r.status_code == 503 and r.json()["error"] == "SERVICE_UNAVAILABLE", r.text
        assert max(timings) < BOUND_S and admin_took < BOUND_S
        spooled = list((home / "usage-spool").glob("*.json"))
        assert len(spooled) == 5, "every answer given during the hang is spooled before its last byte"
        gw.stop(signal.SIGKILL)
    finally:
        thaw(frozen)

    restarted = _gateway(home, own_pg, simulator)
    try:
        with psycopg.connect(own_pg.uri, autocommit=True) as conn:

            def rows() -> list[tuple[int, str]]:
                cur = conn.execute("SELECT coalesce(input_tokens,0) + coalesce(output_tokens,0), user_id FROM ai.usage")
                return cur.fetchall()

            # A batch is acknowledged after its rows and charges committed: wait for the empty spool.
            assert wait_for(lambda: not list((home / "usage-spool").glob("*.json")), timeout=20)
            assert len(rows()) == 6
            tokens = sum(t for t, _ in rows())
            counted = conn.execute(
                "SELECT coalesce(sum(tokens), 0) FROM ai.quota_counters"
                " WHERE scope = 'user' AND subject LIKE 'user:%%' AND period = 'month'"
            ).fetchone()
            assert counted is not None and int(counted[0]) == tokens, "replayed calls are charged, once"
    finally:
        restarted.stop()
