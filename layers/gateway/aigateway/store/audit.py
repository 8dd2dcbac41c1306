"""ai.audit_logs: who changed what, and which calls were blocked or limited."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from ..db import Conn, Database


async def record(conn: Conn, db: Database, *, actor: str, action: str, details: dict[str, Any], ip: str | None) -> None:
    """Write one audit record on `conn` (inside the caller's transaction when it has one)."""
    await conn.execute(
        db.q("INSERT INTO {s}.audit_logs (actor, action, details, ip_address) VALUES (%s, %s, %s, %s)"),
        (actor, action, Jsonb(details), ip),
    )


async def record_now(db: Database, *, actor: str, action: str, details: dict[str, Any], ip: str | None) -> None:
    """An audit record on its own (blocked or limited calls: there is no mutation to join)."""

    async def work(conn: Conn) -> None:
        await record(conn, db, actor=actor, action=action, details=details, ip=ip)

    await db.run(work)


async def search(
    db: Database,
    *,
    action: str | None,
    actor: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    where = """WHERE (%(action)s::text IS NULL OR action = %(action)s)
                 AND (%(actor)s::text IS NULL OR actor = %(actor)s)
                 AND (%(start)s::timestamptz IS NULL OR created_at >= %(start)s)
                 AND (%(end)s::timestamptz IS NULL OR created_at <= %(end)s)"""
    params = {"action": action, "actor": actor, "start": start, "end": end, "limit": limit, "offset": offset}
    rows = await db.fetch(
        "SELECT id, actor, action, module, details, ip_address, created_at FROM {s}.audit_logs "
        + where
        + " ORDER BY created_at DESC, id LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )
    total = await db.fetchone("SELECT COUNT(*) AS n FROM {s}.audit_logs " + where, params)
    return rows, int(total["n"]) if total else 0
