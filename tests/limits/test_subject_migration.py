"""Migration 005 keeps existing quota counters readable: old raw subjects become the typed keys."""

from __future__ import annotations

from aigateway import limits
from aigateway.db import sql as render
from aigateway.local import EmbeddedPostgres
from aigateway.migrations import apply, migration_files

from tests.support import SQL

SCHEMA = "mig005"


def _in(template: str) -> str:
    """`template` with `{s}` naming this test's own schema (the `sql` fixture would say `ai`)."""
    return render(template, SCHEMA)


def test_old_subjects_are_rewritten_to_typed_keys_and_the_rerun_changes_nothing(pg: EmbeddedPostgres, sql: SQL) -> None:
    sql(_in("DROP SCHEMA IF EXISTS {s} CASCADE"))
    apply(pg.uri, SCHEMA)
    new_key = limits.user_subject("already-new").key
    for subject in ("alice", "admin", new_key):  # two rows as the previous release wrote them
        sql(
            _in(
                "INSERT INTO {s}.quota_counters (scope, subject, period, period_start, tokens)"
                " VALUES ('user', %s, 'day', current_date, 7)"
            ),
            (subject,),
        )
    sql(_in("INSERT INTO {s}.rate_counters (scope, subject, window_start, hits) VALUES ('user', 'alice', now(), 1)"))
    text = dict(migration_files())["005_quota_holds.sql"]
    sql(_in(text))  # what applying 005 over the old rows does (and it is safe to rerun)

    subjects = {r["subject"] for r in sql(_in("SELECT subject FROM {s}.quota_counters"))}
    assert subjects == {limits.user_subject("alice").key, limits.ADMIN.key, new_key}
    assert not sql(_in("SELECT 1 FROM {s}.rate_counters"))
    sql(_in("DROP SCHEMA {s} CASCADE"))
