"""Plain-SQL migrations, applied in file-name order and recorded in `<schema>.schema_migrations`.

Why plain SQL: the files are what an admin reads to know the schema, and applying them
needs nothing but psycopg, so the same runner serves the CLI, the tests and the
CloudFormation custom resource. A transaction-scoped advisory lock makes concurrent runs
(two deploys, two test workers) wait for each other instead of racing.
"""

from __future__ import annotations

import logging
from importlib import resources

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


def apply(conninfo: str, schema: str = "ai") -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied now."""
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, connect_timeout=10) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
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


def apply_all(settings: Settings | None = None) -> list[str]:
    """Apply migrations to the database the settings name (CLI and deploy-time entry point)."""
    from ..secrets import conninfo

    s = settings or Settings.from_env()
    return apply(conninfo(s), s.db_schema)
