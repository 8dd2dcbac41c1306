"""The statements of the stale-item sweep (flows/batch_sweep.py) on ai.batch_items (migration 014).

An item is stale when it is open (`pending` or `running`) and its row has not changed for
`older_than_s` seconds: every claim, retry and outcome sets `updated_at`, and a worker touches its
running item every quarter of that age while the call lasts (`store.batches.touch`), so nothing is
working on it and its queue message is gone. Only items the gateway's own engine runs are swept: an item sent
in an upstream batch stays `running` until the poll settles it, however long that takes.

Each statement is one UPDATE whose WHERE re-checks staleness, so a worker that claims the item
at the same moment wins or loses cleanly: a claim sets `updated_at`, and the sweep then skips it.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..db import Database

_STALE = """i.status IN ('pending', 'running')
       AND i.updated_at < now() - make_interval(secs => %(older_than_s)s)
       AND b.id = i.batch_id AND b.upstream = 'gateway'"""

_RESEND = (
    """UPDATE {s}.batch_items i SET attempts = i.attempts + 1, updated_at = now()
      FROM {s}.batches b
     WHERE """
    + _STALE
    + """ AND b.status = 'in_progress' AND i.attempts < %(max_attempts)s
    RETURNING i.batch_id, i.custom_id"""
)

_EXPIRE = (
    """UPDATE {s}.batch_items i
       SET status = 'failed', status_code = %(code)s, error = %(error)s::jsonb, updated_at = now()
      FROM {s}.batches b
     WHERE """
    + _STALE
    + """ AND b.status = 'in_progress' AND i.attempts >= %(max_attempts)s
    RETURNING i.batch_id"""
)

# A batch being cancelled takes no new claims, so its stale item could never end otherwise.
_CANCEL = (
    """UPDATE {s}.batch_items i SET status = 'cancelled', updated_at = now()
      FROM {s}.batches b
     WHERE """
    + _STALE
    + """ AND b.status = 'cancelling'
    RETURNING i.batch_id"""
)


async def resend(db: Database, *, older_than_s: float, max_attempts: int) -> list[tuple[str, str]]:
    """Stale items with attempts left, each now counting one more attempt (the lost delivery) and
    touched, so the next sweep gives the new message time; (batch_id, custom_id) to queue again."""
    rows = await db.fetch(_RESEND, {"older_than_s": older_than_s, "max_attempts": max_attempts})
    return [(r["batch_id"], r["custom_id"]) for r in rows]


async def expire(
    db: Database, *, older_than_s: float, max_attempts: int, status_code: int, error: dict[str, Any]
) -> list[str]:
    """Fail the stale items out of attempts with `error`; each one's batch id."""
    rows = await db.fetch(
        _EXPIRE,
        {
            "older_than_s": older_than_s,
            "max_attempts": max_attempts,
            "code": status_code,
            "error": orjson.dumps(error).decode(),
        },
    )
    return [r["batch_id"] for r in rows]


async def cancel_stale(db: Database, *, older_than_s: float) -> list[str]:
    """Cancel the stale items of batches being cancelled; each one's batch id."""
    rows = await db.fetch(_CANCEL, {"older_than_s": older_than_s})
    return [r["batch_id"] for r in rows]
