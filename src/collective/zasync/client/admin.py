"""Admin actions: what a site administrator (or a user, on their own jobs) does to jobs:
retry (run again), cancel, remove. Add-ons may import this module (documented as
``collective.zasync.actions``).

Used by the control panel, My jobs, the REST API and the command line. Each function
works in the current transaction; a retried job runs again as the user who queued it,
never as the administrator who clicked. ("Retry" is the administrator's action on a
failed job; a job's own ``retry_on`` attempts and its conflict retries happen in the
worker: docs/design.md's "Words". "Admin action", not "action": Plone's actions and
the content rule action are others.)
"""

from AccessControl import getSecurityManager
from collective.zasync import interfaces
from collective.zasync.core.cancelling import forget_request
from collective.zasync.core.cancelling import request_cancel
from collective.zasync.core.dependencies import drop_removed
from collective.zasync.core.indexes import holds_other_sites
from collective.zasync.core.indexes import jobs_of_site
from collective.zasync.core.indexes import unindex_job
from collective.zasync.core.indexes import unindex_unloadable
from collective.zasync.core.job import state_name
from collective.zasync.core.lifecycle import end_unstarted
from collective.zasync.core.lifecycle import file_done
from collective.zasync.core.lifecycle import file_new
from collective.zasync.core.lifecycle import schedule_next_run
from collective.zasync.core.migration import put
from collective.zasync.core.places import is_filed_finished
from collective.zasync.core.places import remove_all_finished
from collective.zasync.core.places import unfile_finished
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.setaside import load_error
from collective.zasync.core.totals import count_retry


class Cancelled(Exception):
    """The job was cancelled before it ran."""


class ActionError(ValueError):
    """The action does not apply to the job in its current state."""


def queue_of(job):
    return get_queue_root(job._p_jar, create=False).queues[job.queue_name]


def find_job(queues, job_id, site_path=None):
    """The job with ``job_id`` in any of ``queues`` (a mapping), or None.

    With ``site_path``, a job queued in another site (of a shared queue
    database) is None too: a site's views and commands never reach it.
    """
    for queue in queues.values():
        job = queue.get(job_id)
        if job is not None:
            if site_path is None:
                return job
            # (one that cannot be loaded cannot tell its site: the Zope root's views reach it)
            return job if load_error(job) is None and job.site_path == site_path else None
    return None


def is_pending(job):
    return job.status == interfaces.PENDING


def retry(job):
    """Queue a failed job again (same id, same user); return the job queued.

    A batch runs again its failed sub-jobs, and only those: a serial batch
    from the one that failed on, in order (the "Not run" ones are failed
    too), a parallel batch each one that failed. Retrying a failed sub-job
    retries its batch once the batch has finished (alone, it would leave the
    batch incomplete), and returns the batch.
    """
    if job.status != interfaces.COMPLETED or not failed_parts(job):
        raise ActionError("Only a failed job can be retried; job %s is %s." % (job.id, state_name(job)))
    batch = job.parent if job.parent is not None and job.parent.batch_kind else None
    if batch is not None:
        if batch.status != interfaces.COMPLETED:
            raise ActionError(
                "Job %s is part of batch %s, which has not finished: retry the batch "
                "once it has." % (job.id, batch.id)
            )
        job = batch
    queue = queue_of(job)
    parts = [*failed_parts(job), job] if job.batch_kind else [job]
    check_filed(queue, parts)
    forget_request(get_queue_root(job._p_jar, create=False), job.id)  # one it never saw
    for part in parts:
        unfile_finished(queue, part)  # (before the reset: where it is filed depends on its result)
        part.reset()
    count_retry(queue)
    return put(queue, job)


def failed_parts(job):
    """What a retry runs again: the failed sub-jobs of a batch, or the failed job itself."""
    if job.batch_kind:
        return [subjob for subjob in job.subjobs if subjob.failed]
    return [job] if job.failed else []


def cancel(job):
    """Cancel a pending or delayed job: it ends failed with Cancelled.

    A running job is asked to stop: its next set_progress() or
    check_cancelled() raises JobCancelled, and it ends failed, none of its
    work kept. One that never checks runs on until its time limit.
    """
    if job.status == interfaces.ACTIVE and job.batch_kind:
        raise ActionError("Job %s is a batch: cancel its running jobs one by one." % job.id)
    if job.status == interfaces.ACTIVE:
        request_cancel(job, getSecurityManager().getUser().getId())
        return job
    if not is_pending(job):
        raise ActionError("Only a pending or running job can be cancelled; job %s is %s."
                          % (job.id, state_name(job)))
    if job.parent is not None and job.parent.batch_kind:
        raise ActionError("Job %s is part of a batch: cancel the batch's jobs from the batch." % job.id)
    queue = queue_of(job)
    end_unstarted(queue, job, Cancelled("Cancelled before it ran."))
    if job.recurrence is not None and not job.recurrence.cancelled:
        schedule_next_run(queue, job)  # one run cancelled: the next is due as planned
    return job


def remove(job):
    """Remove a finished job from its queue for good."""
    if job.status != interfaces.COMPLETED:
        raise ActionError("Only a finished job can be removed; job %s is %s." % (job.id, state_name(job)))
    queue = queue_of(job)
    check_filed(queue, [job])
    unfile_finished(queue, job)
    queue.jobs.pop(job.id, None)
    unindex_job(queue, job)
    forget_request(get_queue_root(job._p_jar, create=False), job.id)


def check_filed(queue, jobs):
    """Raise unless every finished job of ``jobs`` is filed as finished (by the finisher).

    One that ended a moment ago waits in its worker's claims or done log: retried or
    removed now, the filing that comes next would file its old end again.
    """
    for job in jobs:
        if not is_filed_finished(queue, job):
            raise ActionError("Job %s finished a moment ago and a worker is filing it: try again "
                              "in a moment." % job.id)


def remove_finished(queue, failed=False, site_path=None):
    """Remove every completed (or every failed) job of ``queue`` (of the site ``site_path``); return how many."""
    if site_path is not None and holds_other_sites(queue, site_path):
        state = "failed" if failed else "completed"
        removable = [job for job in jobs_of_site(queue, site_path)
                     if job.status == interfaces.COMPLETED and state_name(job) == state]
        for job in removable:
            remove(job)
        return len(removable)
    return remove_all_finished(queue, failed)


def remove_set_aside(root, key):
    """Drop a job set aside (core/setaside.py) for good; ``key``: its hex oid (set_aside_jobs)."""
    job, _text, _when, _where, job_id = root.set_aside.pop(bytes.fromhex(key))
    if job_id is not None:
        for queue in root.queues.values():
            unindex_unloadable(queue, job_id, job)
        forget_request(root, job_id)  # (asked to stop while it ran, before it was set aside)
    drop_removed(root, job, job_id)  # (the jobs that depend on it are decided now)


def retry_set_aside(root, key):
    """File a job set aside again, if it loads now (its code was fixed); else raise its error."""
    job = root.set_aside[bytes.fromhex(key)][0]
    error = load_error(job)
    if error is not None:
        raise ActionError("Job %s still cannot be loaded: %s: %s" % (key, type(error).__name__, error))
    del root.set_aside[bytes.fromhex(key)]
    forget_request(root, job.id)  # (as retry: one it never saw)
    queue = root.queues[job.queue_name]
    if job.status == interfaces.COMPLETED:
        file_done(root, job)  # it had finished: filed as finished now
        return job
    job.release()
    file_new(queue, job)
    return job
