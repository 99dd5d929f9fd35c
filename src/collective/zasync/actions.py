"""What a site administrator can do to jobs: retry, cancel, remove.

Used by the control panel and the REST API. Each function works in the
current transaction; a retried job runs again as the user who queued it,
never as the administrator who clicked.
"""

from collective.zasync import interfaces
from collective.zasync.failure import Failure
from collective.zasync.job import utcnow
from collective.zasync.queue import file_finished
from collective.zasync.queue import get_queue_root
from collective.zasync.queue import pending_key
from collective.zasync.queue import unfile_finished


class Cancelled(Exception):
    """The job was cancelled before it ran."""


class ActionError(ValueError):
    """The action does not apply to the job in its current state."""


def queue_of(job):
    return get_queue_root(job._p_jar, create=False).queues[job.queue_name]


def find_job(queues, job_id):
    """The job with ``job_id`` in any of ``queues`` (a mapping), or None."""
    for queue in queues.values():
        job = queue.get(job_id)
        if job is not None:
            return job
    return None


def is_pending(job):
    return job.status == interfaces.PENDING


def retry(job):
    """Queue a failed job again (same id, same user); return it."""
    if job.status != interfaces.COMPLETED or not job.failed:
        raise ActionError("Only a failed job can be retried; job %s is %s." % (job.id, state_of(job)))
    queue = queue_of(job)
    worker = get_queue_root(job._p_jar, create=False).workers.get(job.worker_uuid)
    if worker is not None and job in worker.done:  # not filed by its worker yet
        worker.done.remove(job)
    elif job in queue.done:
        queue.done.remove(job)
    else:
        unfile_finished(queue, job)
    job._result = None
    job.ended = job.started = job.worker_uuid = None
    job.retries = 0
    job.events_fired = False
    job.begin_after = None
    for callback in job.callbacks:
        callback.status, callback._result = interfaces.NEW, None
    job.status = interfaces.NEW
    return queue.put(job)


def cancel(job):
    """Cancel a pending or delayed job: it ends failed with Cancelled."""
    if not is_pending(job):
        raise ActionError("Only a pending job can be cancelled; job %s is %s." % (job.id, state_of(job)))
    if job.parent is not None and job.parent.batch_kind:
        raise ActionError("Job %s is part of a batch: cancel the batch's jobs from the batch." % job.id)
    queue = queue_of(job)
    if job in queue.inbox:
        queue.inbox.remove(job)
    elif queue.pending_jobs.pop(pending_key(job), None) is not None:
        queue.pending_count.change(-1)
    else:
        raise ActionError("Job %s is being claimed by a worker right now." % job.id)
    job._result = Failure(Cancelled("Cancelled before it ran."))
    job.ended = utcnow()
    job.status = interfaces.COMPLETED
    file_finished(queue, job)
    queue.jobs[job.id] = job
    if job.unique_key is not None and queue.unique.get(job.unique_key) is job:
        del queue.unique[job.unique_key]
    return job


def remove(job):
    """Remove a finished job from its queue for good."""
    if job.status != interfaces.COMPLETED:
        raise ActionError("Only a finished job can be removed; job %s is %s." % (job.id, state_of(job)))
    queue = queue_of(job)
    unfile_finished(queue, job)
    queue.jobs.pop(job.id, None)


def remove_finished(queue, failed=False):
    """Remove every completed (or every failed) job of ``queue``; return how many."""
    tree, length = (queue.failed, queue.failed_count) if failed else (queue.completed, queue.completed_count)
    count = 0
    for key, job in list(tree.items()):
        del tree[key]
        queue.jobs.pop(job.id, None)
        count += 1
    length.change(-count)
    return count


def state_of(job, now=None):
    """'pending', 'delayed', 'active', 'failed' or 'completed' (what the panel shows)."""
    if job.status == interfaces.COMPLETED:
        return "failed" if job.failed else "completed"
    if job.status == interfaces.PENDING:
        now = now or utcnow()
        if job.begin_after is not None and job.begin_after > now:
            return "delayed"
        return "pending"
    if job.status == interfaces.NEW:
        return "new"
    return "active"
