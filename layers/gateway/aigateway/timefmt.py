"""Timestamps as callers see them: ISO 8601 in UTC with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def iso_or_none(t: datetime | None) -> str | None:
    return iso_utc(t) if t is not None else None
