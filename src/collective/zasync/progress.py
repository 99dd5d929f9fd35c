"""Progress reported from inside a running job, readable from anywhere.

``set_progress`` writes to the Progress slot of the worker thread, in its own
connection and transaction: other connections see it at once, and the job's
own transaction (its work, committed at the end) is not touched. That
connection also sees a request to cancel the job (cancelling.py):
``set_progress`` and ``check_cancelled`` raise JobCancelled then.
"""

from collective.zasync import interfaces
from collective.zasync.cancelling import check_in_own_connection
from collective.zasync.cancelling import raise_if_requested
from collective.zasync.callables import check_picklable
from collective.zasync.job import utcnow
from collective.zasync.queue import get_queue_root
from collective.zasync.runner import current
from collective.zasync.service import get_job

import transaction


def running_job(what):
    """(job, runner) of the job running in this thread; RuntimeError outside a job."""
    job = getattr(current, "job", None)
    runner = getattr(current, "runner", None)
    if job is None or runner is None:
        raise RuntimeError("%s is called from inside a running job only." % what)
    return job, runner


def check_cancelled():
    """Raise JobCancelled if an administrator asked the running job to stop."""
    job, runner = running_job("check_cancelled()")
    check_in_own_connection(runner.db, job.id)


def set_progress(value, data=None):
    """Report ``value`` (0 to 100) and optional ``data`` for the running job.

    Raises JobCancelled if the job was asked to stop (see check_cancelled).
    """
    job, runner = running_job("set_progress()")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ValueError("Progress is a number from 0 to 100, not %r." % (value,))
    check_picklable(data, "progress data")
    manager = transaction.TransactionManager()
    conn = runner.db.open(transaction_manager=manager)
    try:
        manager.begin()
        root = get_queue_root(conn, create=False)
        raise_if_requested(root, job.id)
        record = root.workers.get(runner.worker_uuid)
        if record is None or runner.slot >= len(record.slots):
            return  # declared dead meanwhile: nobody will show it
        slot = record.slots[runner.slot]
        slot.job_id, slot.claim_token = job.id, job.claim_token
        slot.value, slot.data, slot.updated = value, data, utcnow()
        manager.commit()
    finally:
        manager.abort()
        conn.close()


def get_progress(job):
    """(-1, None) before the job starts, (value, data) while it runs, None when done.

    ``job`` is a job or its id, looked up with ``api.get_job``: an unknown
    id, or a job the current user may not see (another user's), raises LookupError.
    """
    if isinstance(job, str):
        found = get_job(job)
        if found is None:
            raise LookupError("No job %r that you may see (unknown, another user's, or removed after "
                              "the retention)." % job)
        job = found
    if job.status == interfaces.COMPLETED:
        return None
    if job.status in (interfaces.NEW, interfaces.PENDING) or job.worker_uuid is None:
        return (-1, None)
    record = get_queue_root(job._p_jar, create=False).workers.get(job.worker_uuid)
    for slot in getattr(record, "slots", ()):
        if slot.job_id == job.id and slot.claim_token == job.claim_token:
            return (slot.value, slot.data)
    return (0, None)
