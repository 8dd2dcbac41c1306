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
    async def scenario() -> list[float]:
        # One database handle per kind of operation, each with an idle connection as under traffic,
        # so no operation benefits from another's back-off.
        dbs = [Database(lambda: own_pg.uri, schema="ai", op_timeout_s=1.0, connect_timeout_s=1) for _ in range(3)]
        for db in dbs:
            await db.fetch("SELECT 1")
        frozen = freeze(own_pg.pgdata)
        took = []
        try:
            for work in (dbs[0].fetch("SELECT 1"), dbs[1].execute("SELECT 1"), _in_transaction(dbs[2])):
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
    """A listener that accepts and hangs up: every connect fails. Three seconds of calls in a tight
    loop make a handful of connection attempts (the back-off spaces them), not hundreds."""
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
    info = f"host=127.0.0.1 port={port} user=x dbname=x sslmode=disable"
    db = Database(lambda: info, connect_timeout_s=1, op_timeout_s=1.0)

    async def hammer() -> tuple[int, int]:
        calls = refused = 0
        end = time.monotonic() + 3
        while time.monotonic() < end:
            calls += 1
            try:
                await db.fetch("SELECT 1")
            except GatewayError:
                refused += 1
            await asyncio.sleep(0.005)
        return calls, refused

    try:
        calls, refused = asyncio.run(hammer())
    finally:
        listener.close()
    print(f"\n{calls} calls in 3 s, {attempts} connection attempts")
    assert refused == calls and calls > 50
    assert attempts <= 10, f"{attempts} connection attempts in 3 s"


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
