"""Settling a call: its usage row written (or spooled) and its tokens and spend counted against quotas."""

from __future__ import annotations

import asyncio
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

    Runs before the answer's last byte, so its time is the caller's: the row and the charge are
    independent statements and go out together (on separate connections where the pool has them).
    Concurrent calls share one insert and one charge statement per subject (`Services.usage`,
    `Services.charges`: group commit). Never raises: the answer is already paid for upstream.
    """
    metrics.record_call(record)
    if admission is None:
        await svc.usage.record(record)
        return
    await asyncio.gather(svc.usage.record(record), _charge(svc, admission, record))


async def _charge(svc: Services, admission: Admission, record: UsageRecord) -> None:
    tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
    try:
        await svc.charges.submit((admission.subject, tokens, record.cost_usd))
    except Exception:
        log.exception("charging usage against limits failed")
