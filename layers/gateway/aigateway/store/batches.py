"""ai.batches, ai.batch_items and ai.batch_files (migration 014): every batch statement.

An item moves pending → running → done | failed, or pending → cancelled. `claim` also takes an
item that is `running`: its worker died (or its queue message came back), and running it again
is safe because its usage row is keyed by its request id. A batch is finished by whichever item
ends last (`finish`), in the same way whoever is last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ..db import Database


@dataclass(frozen=True)
class Owner:
    """Who submitted a batch: its items run as this caller."""

    role: str
    user_id: str | None
    email: str | None
    via_api_key: bool
    ip: str | None
    upstream_headers: dict[str, str]


@dataclass(frozen=True)
class NewItem:
    custom_id: str
    kind: str
    body: dict[str, Any]
    model: str


@dataclass(frozen=True)
class Claimed:
    """An item a worker is about to run, with its batch's owner and state."""

    batch_id: str
    custom_id: str
    idx: int
    kind: str
    body: dict[str, Any]
    attempts: int
    owner: Owner
    batch_status: str
    stopped_by: str | None


_CREATE = """WITH b AS (
    INSERT INTO {s}.batches (id, dialect, endpoint, input_file_id, metadata, owner_role, owner_user_id,
                             owner_email, owner_via_api_key, owner_ip, upstream_headers, total, upstream)
    VALUES (%(id)s, %(dialect)s, %(endpoint)s, %(input_file_id)s, %(metadata)s::jsonb, %(role)s, %(user_id)s,
            %(email)s, %(via_api_key)s, %(ip)s, %(headers)s::jsonb, %(total)s, %(upstream)s)
    RETURNING id)
INSERT INTO {s}.batch_items (batch_id, custom_id, idx, kind, body, model)
SELECT b.id, u.custom_id, u.idx, u.kind, u.body::jsonb, u.model
  FROM b, unnest(%(custom_ids)s::text[], %(idxs)s::integer[], %(kinds)s::text[], %(bodies)s::text[],
                 %(models)s::text[]) AS u (custom_id, idx, kind, body, model)"""


async def create(
    db: Database,
    batch_id: str,
    owner: Owner,
    items: list[NewItem],
    *,
    dialect: str = "native",
    endpoint: str | None = None,
    input_file_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    upstream: str = "gateway",
) -> None:
    """The batch and all its items in one statement: a batch exists whole or not at all."""
    await db.execute(
        _CREATE,
        {
            "id": batch_id,
            "dialect": dialect,
            "endpoint": endpoint,
            "input_file_id": input_file_id,
            "metadata": orjson.dumps(metadata).decode() if metadata is not None else None,
            "role": owner.role,
            "user_id": owner.user_id,
            "email": owner.email,
            "via_api_key": owner.via_api_key,
            "ip": owner.ip,
            "headers": orjson.dumps(owner.upstream_headers).decode(),
            "total": len(items),
            "upstream": upstream,
            "custom_ids": [i.custom_id for i in items],
            "idxs": list(range(len(items))),
            "kinds": [i.kind for i in items],
            "bodies": [orjson.dumps(i.body).decode() for i in items],
            "models": [i.model for i in items],
        },
    )


_COUNTS = """SELECT b.*,
       COUNT(*) FILTER (WHERE i.status = 'done') AS done,
       COUNT(*) FILTER (WHERE i.status = 'failed') AS failed,
       COUNT(*) FILTER (WHERE i.status IN ('pending', 'running')) AS pending,
       COUNT(*) FILTER (WHERE i.status = 'cancelled') AS cancelled
  FROM {s}.batches b LEFT JOIN {s}.batch_items i ON i.batch_id = b.id"""

# Who may read a batch: its owner (the admin key's batches belong to every admin-key caller),
# or any admin when %(see_all)s.
_VISIBLE = """(%(see_all)s OR (%(via_api_key)s AND b.owner_via_api_key)
       OR (NOT %(via_api_key)s AND NOT b.owner_via_api_key AND b.owner_user_id = %(user_id)s))"""


async def get(
    db: Database, batch_id: str, *, user_id: str | None, via_api_key: bool, see_all: bool
) -> dict[str, Any] | None:
    """The batch with its item counts, if this caller may see it."""
    return await db.fetchone(
        _COUNTS + " WHERE b.id = %(id)s AND " + _VISIBLE + " GROUP BY b.id",
        {"id": batch_id, "user_id": user_id, "via_api_key": via_api_key, "see_all": see_all},
    )


async def listing(
    db: Database, *, user_id: str | None, via_api_key: bool, see_all: bool, limit: int, after: str | None
) -> list[dict[str, Any]]:
    """The caller's batches, newest first, `limit` of them after the batch `after`."""
    return await db.fetch(
        _COUNTS
        + " WHERE "
        + _VISIBLE
        + """ AND (%(after)s::text IS NULL OR (b.created_at, b.id) <
                   (SELECT created_at, id FROM {s}.batches WHERE id = %(after)s))
            GROUP BY b.id ORDER BY b.created_at DESC, b.id DESC LIMIT %(limit)s""",
        {"user_id": user_id, "via_api_key": via_api_key, "see_all": see_all, "limit": limit, "after": after},
    )


async def results(db: Database, batch_id: str, *, after: int, limit: int, finished_only: bool) -> list[dict[str, Any]]:
    """Items in submission order from index `after` on (`finished_only`: done and failed ones)."""
    return await db.fetch(
        """SELECT custom_id, idx, kind, status, status_code, model, result, error
             FROM {s}.batch_items
            WHERE batch_id = %(id)s AND idx >= %(after)s
              AND (NOT %(finished)s OR status IN ('done', 'failed'))
            ORDER BY idx LIMIT %(limit)s""",
        {"id": batch_id, "after": after, "limit": limit, "finished": finished_only},
    )


async def open_items(db: Database) -> list[tuple[str, str]]:
    """(batch_id, custom_id) of every item the gateway's engine has not finished, oldest batch first
    (a restart resumes them; an item sent in an upstream batch is the poll's to settle)."""
    rows = await db.fetch(
        """SELECT i.batch_id, i.custom_id FROM {s}.batch_items i JOIN {s}.batches b ON b.id = i.batch_id
            WHERE i.status IN ('pending', 'running') AND b.upstream = 'gateway' ORDER BY b.created_at, i.idx"""
    )
    return [(r["batch_id"], r["custom_id"]) for r in rows]


async def item_refs(db: Database, batch_id: str) -> list[str]:
    rows = await db.fetch("SELECT custom_id FROM {s}.batch_items WHERE batch_id = %s ORDER BY idx", (batch_id,))
    return [r["custom_id"] for r in rows]


_CLAIM = """WITH c AS (
    UPDATE {s}.batch_items i SET status = 'running', attempts = i.attempts + 1, updated_at = now()
      FROM {s}.batches b
     WHERE i.batch_id = %(batch)s AND i.custom_id = %(item)s AND b.id = i.batch_id
       AND i.status IN ('pending', 'running') AND b.status = 'in_progress' AND b.upstream = 'gateway'
    RETURNING i.batch_id, i.custom_id, i.idx, i.kind, i.body, i.attempts, b.owner_role, b.owner_user_id, b.owner_email,
              b.owner_via_api_key, b.owner_ip, b.upstream_headers, b.status AS batch_status, b.stopped_by)
SELECT * FROM c"""


async def claim(db: Database, batch_id: str, custom_id: str) -> Claimed | None:
    """Mark an item running and read what running it needs; None when there is nothing to run
    (finished already, cancelled, sent in an upstream batch, or no such item)."""
    row = await db.fetchone(_CLAIM, {"batch": batch_id, "item": custom_id})
    if row is None:
        return None
    owner = Owner(
        row["owner_role"],
        row["owner_user_id"],
        row["owner_email"],
        row["owner_via_api_key"],
        row["owner_ip"],
        dict(row["upstream_headers"] or {}),
    )
    return Claimed(
        row["batch_id"],
        row["custom_id"],
        row["idx"],
        row["kind"],
        row["body"],
        row["attempts"],
        owner,
        row["batch_status"],
        row["stopped_by"],
    )


async def record(
    db: Database,
    batch_id: str,
    custom_id: str,
    *,
    status: str,
    status_code: int,
    model: str | None,
    result: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    """An item's outcome; a redelivered item that finished meanwhile keeps its first outcome."""
    await db.execute(
        """UPDATE {s}.batch_items
              SET status = %(status)s, status_code = %(code)s, model = COALESCE(%(model)s, model),
                  result = %(result)s::jsonb, error = %(error)s::jsonb, updated_at = now()
            WHERE batch_id = %(batch)s AND custom_id = %(item)s AND status IN ('pending', 'running')""",
        {
            "batch": batch_id,
            "item": custom_id,
            "status": status,
            "code": status_code,
            "model": model,
            "result": orjson.dumps(result).decode() if result is not None else None,
            "error": orjson.dumps(error).decode() if error is not None else None,
        },
    )


async def delete(db: Database, batch_id: str) -> None:
    await db.execute("DELETE FROM {s}.batches WHERE id = %s", (batch_id,))


async def requeue(db: Database, batch_id: str, custom_id: str) -> None:
    """A running item waits again (a passing refusal): cancelling the batch now reaches it too."""
    await db.execute(
        """UPDATE {s}.batch_items SET status = 'pending', updated_at = now()
            WHERE batch_id = %s AND custom_id = %s AND status = 'running'""",
        (batch_id, custom_id),
    )


async def touch(db: Database, batch_id: str, custom_id: str) -> None:
    """A running item's worker is still on it: the stale-item sweep judges by `updated_at`."""
    await db.execute(
        """UPDATE {s}.batch_items SET updated_at = now()
            WHERE batch_id = %s AND custom_id = %s AND status = 'running'""",
        (batch_id, custom_id),
    )


async def stop(db: Database, batch_id: str, reason: str) -> None:
    """The batch admits no more items (its quota ran out): the rest fail with `reason`."""
    await db.execute("UPDATE {s}.batches SET stopped_by = %s WHERE id = %s AND stopped_by IS NULL", (reason, batch_id))


async def finish(db: Database, batch_id: str) -> bool:
    """Complete the batch (or end its cancellation) once no item is open; True for whoever did."""
    n = await db.execute(
        """UPDATE {s}.batches b
              SET status = CASE WHEN b.status = 'cancelling' THEN 'cancelled' ELSE 'completed' END,
                  completed_at = now()
            WHERE b.id = %s AND b.status IN ('in_progress', 'cancelling')
              AND NOT EXISTS (SELECT 1 FROM {s}.batch_items i
                               WHERE i.batch_id = b.id AND i.status IN ('pending', 'running'))""",
        (batch_id,),
    )
    return n > 0


async def cancel(db: Database, batch_id: str) -> None:
    """Pending items are cancelled at once; running ones finish, then the batch is `cancelled`."""
    async with db.transaction() as conn:
        await conn.execute(
            db.q(
                """UPDATE {s}.batches SET status = 'cancelling', cancelled_at = now()
                    WHERE id = %s AND status = 'in_progress'"""
            ),
            (batch_id,),
        )
        await conn.execute(
            db.q(
                """UPDATE {s}.batch_items SET status = 'cancelled', updated_at = now()
                    WHERE batch_id = %s AND status = 'pending'"""
            ),
            (batch_id,),
        )
    await finish(db, batch_id)


# ---- batches sent upstream as one OpenRouter batch (flows/openrouter_batches.py) -------------


@dataclass(frozen=True)
class Held:
    """An item sent upstream: what settling its answer needs."""

    custom_id: str
    idx: int
    model: str
    hold_id: int | None
    charge_subject: str | None
    config_id: str | None


async def hold(
    db: Database, batch_id: str, custom_id: str, *, hold_id: int | None, subject: str, config_id: str
) -> None:
    """The item was admitted and goes upstream: running, with its hold kept for the poll."""
    await db.execute(
        """UPDATE {s}.batch_items SET status = 'running', attempts = attempts + 1, hold_id = %s,
                  charge_subject = %s, config_id = %s, updated_at = now()
            WHERE batch_id = %s AND custom_id = %s AND status = 'pending'""",
        (hold_id, subject, config_id, batch_id, custom_id),
    )


async def set_upstream(db: Database, batch_id: str, upstream_batch_id: str, key_source: str) -> None:
    await db.execute(
        "UPDATE {s}.batches SET upstream_batch_id = %s, upstream_key_source = %s WHERE id = %s",
        (upstream_batch_id, key_source, batch_id),
    )


async def upstream_open(db: Database) -> list[dict[str, Any]]:
    """Batches waiting for their upstream batch, oldest first."""
    return await db.fetch(
        """SELECT id, upstream_batch_id, upstream_key_source, owner_user_id, upstream_headers
             FROM {s}.batches
            WHERE upstream_batch_id IS NOT NULL AND status IN ('in_progress', 'cancelling')
            ORDER BY created_at"""
    )


async def held(db: Database, batch_id: str) -> list[Held]:
    rows = await db.fetch(
        """SELECT custom_id, idx, model, hold_id, charge_subject, config_id::text AS config_id
             FROM {s}.batch_items WHERE batch_id = %s AND status = 'running' ORDER BY idx""",
        (batch_id,),
    )
    return [Held(r["custom_id"], r["idx"], r["model"], r["hold_id"], r["charge_subject"], r["config_id"]) for r in rows]


# ---- files ------------------------------------------------------------------------------------


async def add_file(
    db: Database, file_id: str, *, user_id: str | None, via_api_key: bool, purpose: str, filename: str, size: int
) -> dict[str, Any]:
    row = await db.fetchone(
        """INSERT INTO {s}.batch_files (id, owner_user_id, owner_via_api_key, purpose, filename, bytes)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING *""",
        (file_id, user_id, via_api_key, purpose, filename, size),
    )
    assert row is not None
    return row


async def get_file(
    db: Database, file_id: str, *, user_id: str | None, via_api_key: bool, see_all: bool
) -> dict[str, Any] | None:
    return await db.fetchone(
        "SELECT b.* FROM {s}.batch_files b WHERE b.id = %(id)s AND " + _VISIBLE,
        {"id": file_id, "user_id": user_id, "via_api_key": via_api_key, "see_all": see_all},
    )


async def list_files(
    db: Database, *, user_id: str | None, via_api_key: bool, see_all: bool, limit: int, after: str | None
) -> list[dict[str, Any]]:
    """The caller's files, newest first, `limit` of them after the file `after`."""
    return await db.fetch(
        "SELECT b.* FROM {s}.batch_files b WHERE "
        + _VISIBLE
        + """ AND (%(after)s::text IS NULL OR (b.created_at, b.id) <
                   (SELECT created_at, id FROM {s}.batch_files WHERE id = %(after)s))
            ORDER BY b.created_at DESC, b.id DESC LIMIT %(limit)s""",
        {"user_id": user_id, "via_api_key": via_api_key, "see_all": see_all, "limit": limit, "after": after},
    )


async def delete_file(db: Database, file_id: str) -> None:
    await db.execute("DELETE FROM {s}.batch_files WHERE id = %s", (file_id,))


def timestamp(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None
