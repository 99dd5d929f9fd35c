"""Cancel requests for running jobs. Add-ons use ``api.JobCancelled`` and ``api.check_cancelled``.

A running job's own connection sees the database as it was when its
transaction began, and its final commit writes the job: so a request to stop
it is neither written on the job (that would make the job's commit conflict)
nor read in the job's transaction. It is a small entry in a tree of its own
(``QueueRoot.cancel_requests``: job id -> (user id, when, job)), written by the
request that cancels, read by the job thread in a connection of its own
(``worker/progress.py``) and removed once the job has stopped for it, or is run
again or removed.
"""

from collective.zasync import interfaces
from collective.zasync.core.job import utcnow
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.setaside import load_error
from collective.zasync.core.trees import made


class JobCancelled(BaseException):
    """Raised inside a running job that was asked to stop.

    A BaseException, like asyncio's CancelledError, so that a job's own
    ``except Exception:`` does not swallow it. The job's transaction is
    aborted and the job ends failed with this error.
    """


def request_cancel(job, user_id):
    """Ask the running ``job`` to stop, on behalf of ``user_id`` (current transaction)."""
    root = get_queue_root(job._p_jar, create=False)
    made(root, "cancel_requests")[job.id] = (user_id, utcnow(), job)


def cancel_request(root, job_id):
    """(user id, when, job) if someone asked job ``job_id`` to stop, else None."""
    requests = root.cancel_requests if root is not None else None
    return None if requests is None else requests.get(job_id)


def drop_stale_requests(root, now):
    """Drop the requests of jobs that finished (and of unknown jobs, or jobs that no longer load,
    after a day); return how many.

    The finisher drops a job's request when it files the job finished; a
    request committed at that very moment (the job seen running) stays: these go here.
    """
    requests = root.cancel_requests
    if requests is None:
        return 0
    stale = [job_id for job_id, request in requests.items() if _stale(request, now)]
    for job_id in stale:
        del requests[job_id]
    return len(stale)


def _stale(request, now):
    """True if ``request`` (user id, when[, job]) is for a job that finished; for one that
    is unknown (requests of earlier versions) or no longer loads (setaside.py): after a day."""
    job = request[2] if len(request) > 2 else None
    if job is not None and load_error(job) is None:
        return job.status == interfaces.COMPLETED
    return (now - request[1]).total_seconds() > 86400


def forget_request(root, job_id):
    """Drop the cancel request of job ``job_id``, if there is one."""
    requests = root.cancel_requests if root is not None else None
    if requests is not None and job_id in requests:
        del requests[job_id]


def raise_if_requested(root, job_id, when="while it ran"):
    """Raise JobCancelled if job ``job_id`` was asked to stop."""
    request = cancel_request(root, job_id)
    if request is not None:
        raise JobCancelled("Cancelled by %s %s." % (request[0] or "Anonymous", when))
