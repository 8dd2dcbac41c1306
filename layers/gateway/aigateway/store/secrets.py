"""ai.secrets: wrapped (encrypted) secrets such as the BYOK OpenRouter key. Never plaintext.

Each row holds the ciphertext, the name of the wrapper that made it (`kms` | `local`, so a
change of wrapper is reported instead of failing obscurely) and a masked form for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..db import Conn, Database

BYOK_OPENROUTER = "AI_GATEWAY_OPENROUTER_KEY"


@dataclass(frozen=True)
class StoredSecret:
    ciphertext: bytes
    wrapper: str
    masked_value: str | None
    updated_at: datetime

    def __repr__(self) -> str:  # the ciphertext stays out of logs and tracebacks
        return f"StoredSecret(wrapper={self.wrapper!r}, masked_value={self.masked_value!r})"

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> StoredSecret:
        return cls(bytes(r["value_ciphertext"]), r["wrapper"], r["masked_value"], r["updated_at"])


async def get_active(db: Database, name: str) -> StoredSecret | None:
    row = await db.fetchone(
        """SELECT value_ciphertext, wrapper, masked_value, updated_at
             FROM {s}.secrets WHERE key = %s AND is_active""",
        (name,),
    )
    return StoredSecret.from_row(row) if row else None


async def upsert(conn: Conn, db: Database, name: str, *, ciphertext: bytes, wrapper: str, masked: str) -> None:
    """Store (or replace, and re-activate) the secret `name`."""
    await conn.execute(
        db.q(
            """INSERT INTO {s}.secrets (key, value_ciphertext, wrapper, masked_value, is_active)
               VALUES (%s, %s, %s, %s, true)
               ON CONFLICT (key) DO UPDATE SET
                   value_ciphertext = EXCLUDED.value_ciphertext,
                   wrapper = EXCLUDED.wrapper,
                   masked_value = EXCLUDED.masked_value,
                   is_active = true,
                   updated_at = now()"""
        ),
        (name, ciphertext, wrapper, masked),
    )


async def deactivate(conn: Conn, db: Database, name: str) -> bool:
    """Soft-deactivate: the row stays (when, and which masked key), the ciphertext is erased.

    False when there was no active secret of that name.
    """
    cur = await conn.execute(
        db.q(
            """UPDATE {s}.secrets SET is_active = false, value_ciphertext = ''::bytea, updated_at = now()
                WHERE key = %s AND is_active"""
        ),
        (name,),
    )
    return cur.rowcount > 0
