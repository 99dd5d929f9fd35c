"""The dispatcher's upkeep between its passes: finished jobs past the retention are removed,
idle inboxes retired, stale cancel requests dropped. Not for add-ons.

The loop (worker/dispatcher.py) runs one retention batch per turn, so that its pings
and passes go on between batches, however many jobs expired at once (a million
finished jobs past the retention are removed a batch at a time, the worker pinging
all along). Only the finisher (filing.finisher) does it on its own: two workers
removing the same oldest jobs at once conflict on every batch, and one of them
would redo each batch after the other's commit.
"""

from collective.zasync.core.cancelling import drop_stale_requests
from collective.zasync.core.job import utcnow
from collective.zasync.core.retention import remove_old_jobs
from collective.zasync.core.retention import retire_all_idle_inboxes
from collective.zasync.defaults import RETENTION_BATCH

import logging


log = logging.getLogger("collective.zasync")


def retention_pass(dispatcher):
    """Remove one batch of finished jobs past the retention; retire idle inboxes once none is left.

    Return how many jobs were removed; ``loop_state.retention_backlog`` says if more are left.
    """
    count = dispatcher.in_transaction(remove_old_jobs, dispatcher.settings.retention_days)
    state = dispatcher.loop_state
    state.retention_backlog = count >= RETENTION_BATCH
    if count:
        log.info("Removed %d finished jobs past the retention.", count)
    if not state.retention_backlog:
        dispatcher.in_transaction(retire_all_idle_inboxes, utcnow())
        dispatcher.in_transaction(drop_stale_requests, utcnow())
    return count


def remove_all_old_jobs(dispatcher):
    """Remove every finished job past the retention, a batch per transaction; return how many."""
    removed = 0
    while not dispatcher.stopping.is_set():
        removed += retention_pass(dispatcher)
        if not dispatcher.loop_state.retention_backlog:
            break
    return removed


def mine(dispatcher):
    """True if this worker's loop removes expired jobs: it is the finisher, as of its last pass.

    A worker that is not (any more) leaves its backlog to the finisher: its loop must
    not keep coming back at once for it.
    """
    state = dispatcher.loop_state
    if not state.finisher:
        state.retention_backlog = False
    return state.finisher
