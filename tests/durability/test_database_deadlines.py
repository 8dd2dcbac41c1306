"""Database deadlines: a hung server costs one bounded wait, a dead one no tight reconnect loop, and a
failed configuration refresh serves the configurations last read."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import psycopg
import pytest
from aigateway.config_cache import ConfigCache
from aigateway.db import Database
from aigateway.errors import GatewayError
from aigateway.local import EmbeddedPostgres

from .served import freeze, thaw


def test_a_hung_server_answers_503_within_the_deadline(own_pg: EmbeddedPostgres) -> None:
    db = Database(lambda: own_pg.uri, schema="ai", pool_size=2, op_timeout_s=1.0, connect_timeout_s=1)

    async def scenario() -> list[float]:
        await db.fetch("SELECT 1")  # an idle connection in the pool, as under traffic
        frozen = freeze(own_pg.pgdata)
        took = []
        try:
            for work in (db.fetch("SELECT 1"), db.execute("SELECT 1"), _in_transaction(db)):
                started = time.monotonic()
                with pytest.raises(GatewayError) as info:
                    await work
                assert info.value.status == 503
                took.append(time.monotonic() - started)
        finally:
            thaw(frozen)
        return took

    took = asyncio.run(scenario())
    print(f"\nhung database: 503 after {', '.join(f'{t:.2f}' for t in took)} s")
    assert max(took) < 2.0


async def _in_transaction(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute("SELECT 1")


def test_a_failed_connect_backs_off(own_pg: EmbeddedPostgres) -> None:
    """A listener that accepts and hangs up: every connect fails. Forty calls in a row make a few
    connection attempts, not forty."""
    attempts = 0
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]

    def accept() -> None:
        nonlocal attempts
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            attempts += 1
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    db = Database(lambda: f"host=127.0.0.1 port={port} user=x dbname=x sslmode=disable", connect_timeout_s=1)

    async def hammer() -> int:
        refused = 0
        for _ in range(40):
            try:
                await db.fetch("SELECT 1")
            except GatewayError:
                refused += 1
            await asyncio.sleep(0.01)
        return refused

    try:
        assert asyncio.run(hammer()) == 40
    finally:
        listener.close()
    assert attempts <= 6, f"{attempts} connection attempts in half a second"


def test_a_failed_refresh_serves_the_last_configurations(own_pg: EmbeddedPostgres) -> None:
    with psycopg.connect(own_pg.uri, autocommit=True) as conn:
        conn.execute("INSERT INTO ai.configs (model_id) VALUES ('acme/stale') ON CONFLICT DO NOTHING")
    db = Database(lambda: own_pg.uri, schema="ai", op_timeout_s=1.0, connect_timeout_s=1)
    cache = ConfigCache(db, ttl_s=0.0)  # every get refreshes

    async def scenario() -> tuple[bool, float, float]:
        assert await cache.get("acme/stale") is not None
        frozen = freeze(own_pg.pgdata)
        try:
            started = time.monotonic()
            first = await cache.get("acme/stale")
            first_took = time.monotonic() - started
            started = time.monotonic()
            await cache.get("acme/stale")  # within the retry pause: no second wait
            second_took = time.monotonic() - started
        finally:
            thaw(frozen)
        return first is not None, first_took, second_took

    served, first_took, second_took = asyncio.run(scenario())
    assert served and first_took < 2.0 and second_took < 0.1
