"""What a running job calls to report progress and to see whether it was asked to stop.
Add-ons call these through ``collective.zasync.api`` (``set_progress``, ``check_cancelled``).

``set_progress`` writes to the Progress slot of the worker thread, in its own
connection and transaction: other connections see it at once, and the job's
own transaction (its work, committed at the end) is not touched. That
connection also sees a request to cancel the job (core/cancelling.py):
``set_progress`` and ``check_cancelled`` raise JobCancelled then. Reading a
job's progress is ``api.get_progress`` (client/lookup.py).
"""

from collective.zasync.core.calls import check_picklable
from collective.zasync.core.cancelling import raise_if_requested
from collective.zasync.core.job import utcnow
from collective.zasync.core.queue import get_queue_root
from collective.zasync.worker.current import running_job

import contextlib
import transaction


@contextlib.contextmanager
def own_transaction(db):
    """The queue root, read in a connection and transaction of its own (what is committed
    now, not the job's snapshot); the block commits what it writes with ``manager.commit()``."""
    manager = transaction.TransactionManager()
    conn = db.open(transaction_manager=manager)
    try:
        manager.begin()
        yield manager, get_queue_root(conn, create=False)
    finally:
        manager.abort()
        conn.close()


def check_cancelled():
    """Raise JobCancelled if an administrator asked the running job to stop."""
    job, runner = running_job("check_cancelled()")
    with own_transaction(runner.db) as (_manager, root):
        if root is not None:
            raise_if_requested(root, job.id)


def set_progress(value, data=None):
    """Report ``value`` (0 to 100) and optional ``data`` for the running job.

    Raises JobCancelled if the job was asked to stop (see check_cancelled).
    """
    job, runner = running_job("set_progress()")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError("Progress is a number from 0 to 100, not %r." % (value,))
    check_picklable(data, "progress data")
    with own_transaction(runner.db) as (manager, root):
        raise_if_requested(root, job.id)
        record = root.workers.get(runner.worker_uuid)
        if record is None or runner.slot >= len(record.slots):
            return  # declared dead meanwhile: nobody will show it
        slot = record.slots[runner.slot]
        slot.job_id, slot.claim_token = job.id, job.claim_token
        slot.value, slot.data, slot.updated = value, data, utcnow()
        manager.commit()
