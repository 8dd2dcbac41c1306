"""Settling a call: its usage row written (or spooled) and its tokens and spend counted against quotas."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..limits import Admission
    from ..services import Services
    from ..store.usage import UsageRecord

log = logging.getLogger(__name__)


async def settle(svc: Services, admission: Admission | None, record: UsageRecord) -> None:
    """Write the usage row (or spool it) and charge it against the caller's and the project's quotas.

    Never raises: the answer is already paid for upstream. Concurrent calls share one insert and
    one charge statement per subject (`Services.usage`, `Services.charges`: group commit).
    """
    await svc.usage.record(record)
    if admission is not None:
        tokens = (record.input_tokens or 0) + (record.output_tokens or 0)
        try:
            await svc.charges.submit((admission.subject, tokens, record.cost_usd))
        except Exception:
            log.exception("charging usage against limits failed")
