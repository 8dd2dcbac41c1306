"""Settling a call: its usage row written (or spooled) and its tokens and spend counted against quotas."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import metrics

if TYPE_CHECKING:
    from ..limits import Admission
    from ..services import Services
    from ..store.usage import UsageRecord

log = logging.getLogger(__name__)


async def settle(svc: Services, admission: Admission | None, record: UsageRecord) -> None:
    """Write the usage row (or spool it) and charge it against the caller's and the project's quotas.

    Runs before the answer's last byte, so its time is the caller's. Concurrent calls share one
    insert and one charge statement per subject (`Services.usage`, `Services.charges`: group
    commit). Never raises: the answer is already paid for upstream.
    """
    metrics.record_call(record)
    if admission is None:
        await svc.usage.record(record)
        return
    # The charge follows the row: a spooled row carries its subject and is charged when replay
    # inserts it, so a call is charged once whichever way its row lands.
    record.charge_subject = admission.subject
    if await svc.usage.record(record):
        await _charge(svc, admission, record)


async def _charge(svc: Services, admission: Admission, record: UsageRecord) -> None:
    tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
    try:
        await svc.charges.submit((admission.subject, tokens, record.cost_usd))
    except Exception:
        log.exception("charging usage against limits failed")
