"""Settling a call: its usage row written (or spooled), its use counted against quotas and its
hold replaced; or, for a call that failed before answering, its hold released."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, TypeVar

from .. import limits, metrics

if TYPE_CHECKING:
    from ..limits import Admission
    from ..services import Services
    from ..store.usage import UsageRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


async def settle(svc: Services, admission: Admission | None, record: UsageRecord) -> None:
    """Write the usage row (or spool it) and charge it against the caller's and the project's quotas.

    Runs before the answer's last byte, so its time is the caller's. Concurrent calls share one
    insert and one charge statement per subject (`Services.usage`, `Services.charges`: group
    commit). Never raises: the answer is already paid for upstream; a charge that fails is logged
    as an error.
    """
    metrics.record_call(record)
    if admission is None:
        await svc.usage.record(record)
        return
    # The charge follows the row: a spooled row carries its subject and is charged when replay
    # inserts it, so a call is charged once whichever way its row lands.
    record.charge_subject = admission.subject.key
    if await svc.usage.record(record):
        await _charge(svc, admission, record)


async def _charge(svc: Services, admission: Admission, record: UsageRecord) -> None:
    tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
    charge = limits.Charge(admission.subject.key, tokens, record.cost_usd, admission.hold_id)
    admission.hold_id = None  # settled (or, if the write fails, left to expire): never released too
    try:
        await svc.charges.submit(charge)
    except Exception:
        log.exception("charging usage against limits failed (request %s)", record.request_id)


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
