"""Settling a call: its usage row written (or spooled), its use counted against quotas and its
hold replaced; or, for a call that failed before answering, its hold released."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from .. import limits, metrics

if TYPE_CHECKING:
    from ..limits import Admission
    from ..services import Services
    from ..store.usage import UsageRecord

T = TypeVar("T")


async def settle(svc: Services, admission: Admission | None, record: UsageRecord) -> None:
    """Write the usage row (or spool it), charge it against the caller's and the project's quotas
    and drop its hold: one statement (`store.usage.settle`), which calls that finish together
    share (group commit).

    Runs before the answer's last byte, so its time is the caller's. Never raises: the answer is
    already paid for upstream; a row that cannot be written in time is spooled with its charge.
    """
    metrics.record_call(record)
    if admission is not None:
        record.charge_subject = admission.subject.key
        record.hold_id, admission.hold_id = admission.hold_id, None  # settled here: never released too
    await svc.usage.record(record)
    if admission is not None:
        await limits.sweep_now_and_then(svc)


async def releasing(svc: Services, admission: Admission, call: Awaitable[T]) -> T:
    """`await call`, releasing the admission's quota hold if it fails: a call that errors before
    answering must not keep quota that nothing will ever settle."""
    try:
        return await call
    except BaseException:
        await asyncio.shield(limits.release(svc, admission))
        raise


async def release(svc: Services, admission: Admission) -> None:
    """Release the hold of a call that ended without anything to bill (see `limits.release`)."""
    await limits.release(svc, admission)
