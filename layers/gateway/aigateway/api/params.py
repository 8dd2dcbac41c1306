"""Query-parameter parsing shared by the admin list routes, with the contract's 400s."""

from __future__ import annotations

from datetime import UTC, datetime

from ..errors import invalid_input
from ..store.configs import is_uuid


def parse_time(name: str, value: str | None) -> datetime | None:
    """ISO-8601 (`2026-05-01T00:00:00Z`, offsets allowed, or a bare date); naive means UTC."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise invalid_input(f"Validation error: {name}: Invalid datetime") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_int(name: str, value: str | None, default: int, lo: int, hi: int) -> int:
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise invalid_input(f"Validation error: {name}: Expected a whole number")
    n = int(value)
    if not lo <= n <= hi:
        raise invalid_input(f"Validation error: {name}: Must be between {lo} and {hi}")
    return n


def parse_uuid(name: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not is_uuid(value):
        raise invalid_input(f"Validation error: {name}: Invalid uuid")
    return value
