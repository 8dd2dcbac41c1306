"""Typed query parameters of the admin list routes: FastAPI validates them, failures.py turns a bad one
into 400 INVALID_INPUT naming the parameter (`Validation error: limit: ...`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Query
from pydantic import AfterValidator, BeforeValidator, StringConstraints

from ..schemas import NoNul


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


def _plus_restored(value: Any) -> Any:
    """`2026-05-01T00:00:00+02:00` sent unencoded arrives with a space for the `+`."""
    if isinstance(value, str):
        return _blank_is_none(value.replace(" ", "+")) if "T" in value else _blank_is_none(value)
    return value


def _ascii_whole_number(value: Any) -> Any:
    """Plain ASCII digits only: the int parser also takes `1_000`, surrounding spaces and, in some
    paths, other scripts' digits (`²`, `٣`), none of which a client means as a page size."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 12):
        raise ValueError("must be a whole number written with the digits 0-9")
    return value


def _utc(value: datetime | None) -> datetime | None:
    """A time without an offset is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


# ISO 8601 (`2026-05-01T00:00:00Z`, offsets allowed, or a bare date); naive means UTC.
Timestamp = Annotated[datetime | None, BeforeValidator(_plus_restored), AfterValidator(_utc)]
OptionalUUID = Annotated[UUID | None, BeforeValidator(_blank_is_none)]
Filter = Annotated[Annotated[str, StringConstraints(max_length=256), NoNul] | None, BeforeValidator(_blank_is_none)]
Limit = Annotated[int, Query(ge=1, le=1000), BeforeValidator(_ascii_whole_number)]
Offset = Annotated[int, Query(ge=0, le=10_000_000), BeforeValidator(_ascii_whole_number)]
GroupBy = Annotated[Literal["day", "model", "user", "batch"] | None, BeforeValidator(_blank_is_none)]


def _unix_seconds_or_none(value: Any) -> Any:
    """Only ASCII digits are a time: `²` passes `str.isdigit` but not `int()`. Anything else is
    treated as a missing expiry, which the signature check refuses (403) like any bad link."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        return value
    return None


# The `expires` of a signed image link (api/images.py).
LinkExpiry = Annotated[str | None, BeforeValidator(_unix_seconds_or_none)]
