"""The sweep of stale batch items: no item waits forever for a queue message that is gone.

A message can be lost after the item was stored: SQS moved it to the dead-letter queue after
repeated worker crashes or timeouts, or accepted a send and never delivered it; locally, the
process's queue died with it. The item then stays `pending` or `running`, its batch never
completes and its quota hold expires unseen. The scheduled function (on AWS) and the local server's
periodic loop run this sweep; top to bottom:

1. fail the stale items that used all `BATCH_MAX_ATTEMPTS` with 502 `AI_UPSTREAM_UNAVAILABLE`:
   the item got no answer, as an item its upstream batch did not answer fails, and that code
   already tells a client to try again (no new code for clients to learn);
2. cancel the stale items of batches being cancelled (those take no new claims);
3. finish every batch step 1 or 2 touched, if that was its last open item;
4. queue again the stale items with attempts left (the lost delivery counts as one).

"Stale" is untouched for `BATCH_STALE_AFTER_S` (900 s), above the SQS visibility timeout: a
message still in flight or waiting out its visibility is never taken for lost. An item queued
again that turns out to be running already just runs twice: its usage row and charge are keyed by
its request id (`batch:<id>:<index>`), so it bills once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import AI_UPSTREAM_UNAVAILABLE, GatewayError
from ..store import batch_sweep as store
from ..store import batches

if TYPE_CHECKING:
    from ..services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    resent: int
    expired: int
    cancelled: int
    finished: int


def expired_error(attempts: int) -> GatewayError:
    return GatewayError(
        AI_UPSTREAM_UNAVAILABLE,
        502,
        f"This batch item did not finish in {attempts} attempts: its run was lost"
        " (worker stopped or queue message gone).",
        "Submit this item again in a new batch.",
    )


async def sweep(svc: Services) -> SweepResult:
    """One pass over the stale items (see the module docstring)."""
    older, most = svc.settings.batch_stale_after_s, svc.settings.batch_max_attempts
    err = expired_error(most)
    expired = await store.expire(
        svc.db, older_than_s=older, max_attempts=most, status_code=err.status, error=err.body()
    )
    cancelled = await store.cancel_stale(svc.db, older_than_s=older)
    finished = 0
    for batch_id in sorted(set(expired) | set(cancelled)):
        finished += await batches.finish(svc.db, batch_id)
    refs = await store.resend(svc.db, older_than_s=older, max_attempts=most)
    if refs:
        # A send that fails leaves the items touched: the next sweep after `older` tries again.
        await svc.batch_queue.send(refs)
    if expired or cancelled or refs:
        log.info("batch sweep: %d re-sent, %d expired, %d finished", len(refs), len(expired), finished)
    return SweepResult(len(refs), len(expired), len(cancelled), finished)
