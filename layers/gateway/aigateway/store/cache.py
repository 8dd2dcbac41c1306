"""ai.cache_entries: the response and embeddings cache (migration 013; what goes in: aigateway/cache.py).

Reads and writes are one statement each, keyed by the entry's SHA-256 key. An entry past
`expires_at` is never served, whether or not a sweep has removed it yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..db import Conn, Database


@dataclass(frozen=True)
class Entry:
    """One cached answer: its body and what the upstream charged for it."""

    body: bytes
    model_id: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    expires_in_s: float  # seconds of life left when it was read


@dataclass(frozen=True)
class NewEntry:
    key: bytes
    kind: str  # "chat" | "embedding"
    model_id: str
    user_id: str | None
    body: bytes
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    ttl_s: int


def _entry(r: dict[str, Any]) -> Entry:
    cost = r["cost_usd"]
    return Entry(
        body=bytes(r["body"]),
        model_id=r["model_id"],
        input_tokens=int(r["input_tokens"]),
        output_tokens=int(r["output_tokens"]),
        cost_usd=float(cost) if isinstance(cost, Decimal | float | int) else None,
        expires_in_s=float(r["expires_in_s"]),
    )


_GET = """SELECT key, body, model_id, input_tokens, output_tokens, cost_usd,
       EXTRACT(EPOCH FROM expires_at - now())::float8 AS expires_in_s FROM {s}.cache_entries
    WHERE key = ANY(%s::bytea[]) AND expires_at > now()"""


async def get(db: Database, keys: list[bytes]) -> dict[bytes, Entry]:
    """The live entries among `keys`."""
    rows = await db.fetch(_GET, (keys,))
    return {bytes(r["key"]): _entry(r) for r in rows}


_PUT = """INSERT INTO {s}.cache_entries
        (key, kind, model_id, user_id, body, input_tokens, output_tokens, cost_usd, bytes, expires_at)
    SELECT k, kind, m, u, b, i, o, c, length(b), now() + make_interval(secs => t)
      FROM unnest(%s::bytea[], %s::text[], %s::text[], %s::text[], %s::bytea[], %s::integer[], %s::integer[],
                  %s::numeric[], %s::integer[]) AS e (k, kind, m, u, b, i, o, c, t)
    ON CONFLICT (key) DO UPDATE SET
        body = EXCLUDED.body, model_id = EXCLUDED.model_id, user_id = EXCLUDED.user_id,
        input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
        cost_usd = EXCLUDED.cost_usd, bytes = EXCLUDED.bytes, created_at = now(),
        expires_at = EXCLUDED.expires_at"""


async def put(db: Database, entries: list[NewEntry]) -> None:
    """Insert or refresh entries (one statement; a key appears once per call)."""
    unique = list({e.key: e for e in entries}.values())
    if not unique:
        return
    columns = ("key", "kind", "model_id", "user_id", "body", "input_tokens", "output_tokens", "cost_usd", "ttl_s")
    await db.execute(_PUT, [[getattr(e, c) for e in unique] for c in columns])


# Expired entries first, then the oldest live ones until the rest fits in `cap` bytes. The ranking
# (a sort of every live entry) runs only when the live entries are over the cap; summing their
# sizes is one pass without a sort.
_EVICT = """WITH expired AS (
    DELETE FROM {s}.cache_entries WHERE expires_at <= now() RETURNING 1
), live AS (
    SELECT COALESCE(sum(bytes), 0) AS total FROM {s}.cache_entries WHERE expires_at > now()
), ranked AS (
    SELECT key, sum(bytes) OVER (ORDER BY created_at DESC, key DESC) AS running
      FROM {s}.cache_entries WHERE expires_at > now() AND (SELECT total FROM live) > %(cap)s
), over AS (
    DELETE FROM {s}.cache_entries c USING ranked r WHERE c.key = r.key AND r.running > %(cap)s RETURNING 1
) SELECT (SELECT count(*) FROM expired) AS expired, (SELECT count(*) FROM over) AS evicted"""


async def evict(db: Database, cap_bytes: int) -> tuple[int, int]:
    """Drop expired entries and, oldest first, live ones past the total cap: (expired, evicted)."""
    row = await db.fetchone(_EVICT, {"cap": cap_bytes})
    return (int(row["expired"]), int(row["evicted"])) if row else (0, 0)


SWEEP = "DELETE FROM {s}.cache_entries WHERE expires_at <= now()"


async def sweep(conn: Conn, db: Database) -> int:
    """Delete expired entries (the scheduled rollup runs it); how many."""
    cur = await conn.execute(db.q(SWEEP))
    return cur.rowcount


_STATS = """SELECT kind, model_id, count(*) AS entries, COALESCE(sum(bytes), 0) AS bytes,
       count(*) FILTER (WHERE expires_at <= now()) AS expired, min(created_at) AS oldest
  FROM {s}.cache_entries GROUP BY kind, model_id ORDER BY kind, model_id"""


async def stats(db: Database) -> list[dict[str, Any]]:
    """Entries, bytes and expired entries per kind and model."""
    return await db.fetch(_STATS)


_HITS = """SELECT count(*) FILTER (WHERE cached) AS hits, count(*) AS requests,
       COALESCE(sum(saved_usd), 0) AS saved_usd
  FROM {s}.usage WHERE kind IN ('chat', 'embedding') AND created_at >= now() - make_interval(days => %s)"""


async def recent_hits(db: Database, days: int) -> dict[str, Any]:
    """Cached calls, all chat and embedding calls, and the savings of the last `days` days."""
    return await db.fetchone(_HITS, (days,)) or {}


_PURGE = """DELETE FROM {s}.cache_entries
    WHERE (%(model)s::text IS NULL OR model_id = %(model)s)
      AND (%(user)s::text IS NULL OR user_id = %(user)s)"""


async def purge(conn: Conn, db: Database, *, model_id: str | None, user_id: str | None) -> int:
    """Delete every entry, or a model's, or the ones a user's calls filled; how many."""
    cur = await conn.execute(db.q(_PURGE), {"model": model_id, "user": user_id})
    return cur.rowcount
