"""Plain-SQL migrations, applied in file-name order and recorded in `<schema>.schema_migrations`.

Why plain SQL: the files are what an admin reads to know the schema, and applying them
needs nothing but psycopg, so the same runner serves the CLI, the tests and the
CloudFormation custom resource. A transaction-scoped advisory lock makes concurrent runs
(two deploys, two test workers) wait for each other instead of racing.

Deadlines, so a deploy fails with a clear error instead of hanging: the advisory lock is
waited for at most `lock_wait_s` (another run is migrating), then every statement waits at most
`lock_timeout_s` for a table lock (a long transaction holds a table the migration alters) and
runs at most `statement_timeout_s`. All three are `SET LOCAL`: they end with the transaction.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import Any

import psycopg

from ..db import sql
from ..settings import Settings

log = logging.getLogger(__name__)
_LOCK_ID = 7_130_001


def migration_files() -> list[tuple[str, str]]:
    """(name, SQL text) of every migration shipped with the package, in order."""
    root = resources.files(__package__)
    names = sorted(p.name for p in root.iterdir() if p.name.endswith(".sql"))
    return [(n, root.joinpath(n).read_text(encoding="utf-8")) for n in names]


def apply(
    conninfo: str,
    schema: str = "ai",
    *,
    lock_wait_s: float = 120.0,
    lock_timeout_s: float = 10.0,
    statement_timeout_s: float = 300.0,
) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied now.

    Raises psycopg.errors.LockNotAvailable (or QueryCanceled) when a deadline passes; nothing
    of the run is committed then.
    """
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, connect_timeout=10) as conn:
        with conn.transaction():
            _set_local(conn, "lock_timeout", lock_wait_s)
            _set_local(conn, "statement_timeout", max(lock_wait_s, statement_timeout_s))
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            _set_local(conn, "lock_timeout", lock_timeout_s)
            _set_local(conn, "statement_timeout", statement_timeout_s)
            conn.execute(sql("CREATE SCHEMA IF NOT EXISTS {s}", schema))
            conn.execute(
                sql(
                    "CREATE TABLE IF NOT EXISTS {s}.schema_migrations ("
                    " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                    schema,
                )
            )
            done = {r[0] for r in conn.execute(sql("SELECT name FROM {s}.schema_migrations", schema))}
            for name, text in migration_files():
                if name in done:
                    continue
                log.info("applying migration %s", name)
                conn.execute(sql(text, schema))
                conn.execute(sql("INSERT INTO {s}.schema_migrations (name) VALUES (%s)", schema), (name,))
                applied_now.append(name)
    return applied_now


def _set_local(conn: psycopg.Connection[Any], name: str, seconds: float) -> None:
    # set_config(..., true) is SET LOCAL with a bound value.
    conn.execute("SELECT set_config(%s, %s, true)", (name, f"{max(1, int(seconds * 1000))}ms"))


def apply_all(settings: Settings | None = None) -> list[str]:
    """Apply migrations to the database the settings name (CLI and deploy-time entry point)."""
    from ..secrets import conninfo

    s = settings or Settings.from_env()
    return apply(conninfo(s), s.db_schema)
