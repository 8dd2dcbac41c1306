"""Migrations cannot hang a deploy: a table lock held elsewhere, or another run holding the
migration lock, makes `apply` fail within its deadlines instead of waiting forever."""

from __future__ import annotations

import threading
import time

import psycopg
from aigateway.local import EmbeddedPostgres
from aigateway.migrations import _LOCK_ID, apply


def _apply_in_thread(uri: str, schema: str, **kw: float) -> tuple[threading.Thread, list[BaseException], list[float]]:
    errors: list[BaseException] = []
    took: list[float] = []

    def run() -> None:
        started = time.monotonic()
        try:
            apply(uri, schema, **kw)
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)
        took.append(time.monotonic() - started)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors, took


def test_a_locked_table_fails_the_migration_in_time(pg: EmbeddedPostgres) -> None:
    schema = "mig_locked"
    with psycopg.connect(pg.uri, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.execute(f"CREATE SCHEMA {schema}")
        admin.execute(f"CREATE TABLE {schema}.schema_migrations (name text PRIMARY KEY)")
    holder = psycopg.connect(pg.uri)
    try:
        holder.execute(f"LOCK TABLE {schema}.schema_migrations IN ACCESS EXCLUSIVE MODE")  # a long transaction
        t, errors, took = _apply_in_thread(pg.uri, schema, lock_timeout_s=1.0)
        t.join(timeout=15)
        assert not t.is_alive(), "the migration waited on the locked table"
        assert errors and isinstance(errors[0], psycopg.errors.LockNotAvailable), errors
        assert took[0] < 5
    finally:
        holder.rollback()
        holder.close()
        t.join(timeout=15)
    assert apply(pg.uri, schema)  # with the lock gone it applies
    with psycopg.connect(pg.uri, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_another_run_holding_the_migration_lock_fails_it_in_time(pg: EmbeddedPostgres) -> None:
    wait_s = 1.0
    holder = psycopg.connect(pg.uri)
    try:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        t, errors, _ = _apply_in_thread(pg.uri, "ai", lock_wait_s=wait_s)
        t.join(timeout=15)
        assert not t.is_alive(), "the migration waited forever for the migration lock"
        assert errors and isinstance(errors[0], psycopg.errors.LockNotAvailable), errors
    finally:
        holder.rollback()
        holder.close()
        t.join(timeout=15)
