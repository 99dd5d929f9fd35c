"""What comes with filing a job: a new one waits (or its batch starts, or it waits for its
dependencies); a finished one releases its dependents, its batch's next job, its next run.

Called by the finisher (worker/filing.py) in its pass, by migration, and by the admin
actions and content deletion in their request: in the caller's transaction. Not for add-ons.
"""

from collective.zasync import interfaces
from collective.zasync.core.cancelling import forget_request
from collective.zasync.core.dependencies import file_or_block
from collective.zasync.core.dependencies import release_dependents
from collective.zasync.core.dependencies import unblock
from collective.zasync.core.failure import Failure
from collective.zasync.core.indexes import index_job
from collective.zasync.core.indexes import index_under
from collective.zasync.core.job import utcnow
from collective.zasync.core.places import add_finished
from collective.zasync.core.places import add_waiting
from collective.zasync.core.places import file_waiting
from collective.zasync.core.places import is_filed_finished
from collective.zasync.core.places import unfile_waiting
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.queue import unique_entry_of
from collective.zasync.core.trees import made
from collective.zasync.core.uidindex import index_filed
from collective.zasync.core.uidindex import unindex_finished

import logging


log = logging.getLogger("collective.zasync")


# -- a new job ------------------------------------------------------------------------------


def file_new(queue, job):
    """A job arrived from an inbox: it waits, or its batch starts."""
    if job.status != interfaces.PENDING:
        return  # cancelled before it was filed: admin.cancel filed it as finished
    queue.jobs[job.id] = job
    index_job(queue, job)  # "My jobs" and the item's "Background jobs" (indexes.py)
    if job.recurrence is not None and not job.recurrence.cancelled and job.recurrence.id not in queue.recurring:
        queue.recurring[job.recurrence.id] = job.recurrence
    if job.batch_kind:
        start_batch(queue, job)
    elif job.depends_on:
        file_or_block(queue, job)  # waits, or is kept aside until its dependencies finished
    else:
        file_waiting(queue, job)


def file_from_card(queue, job, card):
    """As file_new, from the filing card (cards.py) of a plain job: the job is not loaded.

    False if the card cannot say it all: the job was filed before (a retry queues a
    job again) or ended before it was filed (a cancel, its content deleted: it is in
    ``ended_unfiled``). The caller then loads it and files it with file_new (which
    passes an ended one over), and drops its ``ended_unfiled`` entry (forget_ended).
    """
    if queue.ended_unfiled is not None and card.job_id in queue.ended_unfiled:
        return False
    if card.job_id in queue.jobs:
        return False
    queue.jobs[card.job_id] = job
    index_under(queue, job, card.job_id, card.index_keys)
    add_waiting(queue, job, card.priority, card.waiting_key)
    index_filed(queue, job, card.job_id, card.uids)
    return True


def unfiled(queue, job):
    """True if ``job`` is still in an inbox of ``queue``, under its id (as every job with a card is)."""
    return queue.inboxes is not None and any(inbox.get_unread(job.id) is job for inbox in queue.inboxes.values())


def forget_ended(queue, job_id):
    """The job ``job_id`` was read from its inbox: its entry in ``ended_unfiled`` (if any) goes."""
    if queue.ended_unfiled is not None and job_id is not None and job_id in queue.ended_unfiled:
        queue.ended_unfiled.remove(job_id)


def start_batch(queue, batch):
    """A batch job was claimed: file its first (serial) or all (parallel) sub-jobs not run yet."""
    batch.begin(utcnow())
    queue.batches[batch.id] = batch
    # A retried batch keeps the sub-jobs that succeeded: only NEW ones run, and only they are
    # listed again (one that succeeded is listed while it is filed finished; removed since,
    # listed again, it would be kept for ever).
    waiting = [subjob for subjob in batch.subjobs if subjob.status == interfaces.NEW]
    for subjob in waiting:
        queue.jobs[subjob.id] = subjob
    for subjob in waiting[:1] if batch.batch_kind == "serial" else waiting:
        file_waiting(queue, subjob)


def requeue(root, job):
    """Give a job claimed by a dead (or stopping) worker back to its queue."""
    record = root.workers.get(job.worker_uuid)
    if record is not None:
        record.claimed.pop(job.id, None)
    job.release()
    if job.status in (interfaces.PENDING, interfaces.CALLBACKS):
        file_waiting(root.queues[job.queue_name], job)


def fail_at_claim(job, exc):
    """Store ``exc`` as the job's failure; a thread fires its events and callbacks."""
    job.finish(Failure(exc))
    log.error("Job %s (%s) failed: %s", job.id, job.describe(), job.result)


# -- a finished job ---------------------------------------------------------------------------


def file_finished(queue, job):
    """File a finished job among the completed (or failed) ones; decide the jobs that waited for it."""
    add_finished(queue, job)
    unindex_finished(queue, job)
    if job.unique_key is not None and queue.unique.get(unique_entry_of(job)) is job:
        del queue.unique[unique_entry_of(job)]
    if queue._p_jar is not None:  # a finished job needs no request to stop any more
        forget_request(get_queue_root(queue._p_jar, create=False), job.id)
    release_dependents(queue, job)


def file_done(root, job):
    """A job finished: file it, and what comes after it (batch, next run)."""
    if job.status != interfaces.COMPLETED:
        return  # retried from the control panel meanwhile
    queue = root.queues[job.queue_name]
    if is_filed_finished(queue, job):
        return  # retried and finished again before its first end was filed: filed once
    file_finished(queue, job)
    if job.parent is not None and job.parent.batch_kind:
        advance_batch(queue, job)
    if job.recurrence is not None:
        schedule_next_run(queue, job)


def advance_batch(queue, job):
    """A sub-job finished: file the next one, or finish the batch."""
    batch = job.parent
    if batch.status != interfaces.ACTIVE:
        return
    if batch.batch_kind == "serial":
        if job.failed:
            for later in batch.subjobs:
                if later.status == interfaces.NEW:
                    later.finish(Failure(
                        RuntimeError("Not run: job %s before it in the batch failed." % job.id)
                    ))
                    later.complete()
                    file_finished(queue, later)
            return finish_batch(queue, batch, job.result)
        for later in batch.subjobs:
            if later.status == interfaces.NEW:
                return file_waiting(queue, later)
    elif any(sub.status != interfaces.COMPLETED for sub in batch.subjobs):
        return
    finish_batch(queue, batch, list(batch.subjobs))


def finish_batch(queue, batch, result):
    """Store the batch's result; a worker thread fires its event and runs its callbacks."""
    del queue.batches[batch.id]
    batch.finish(result)
    file_waiting(queue, batch)


def schedule_next_run(queue, job):
    """A run of a recurring job finished: queue the next one, unless cancelled."""
    recurrence = job.recurrence
    recurrence.runs += 1
    if recurrence.cancelled or recurrence.current is not job:
        return
    run = recurrence.next_run(job)
    run.status = interfaces.PENDING
    queue.jobs[run.id] = run
    index_job(queue, run)
    file_waiting(queue, run)


def end_unstarted(queue, job, error):
    """End a pending (or delayed, or blocked) job failed with ``error``, before it ever starts.

    It leaves ``waiting`` (or the dependencies' ``blocked``) now; one still in the
    inbox it was queued in is passed over by the dispatcher (it is completed). A
    batch's jobs that were to run end with it. It is listed as the others are.
    """
    unfile_waiting(queue, job)
    unblock(queue, job)
    if unfiled(queue, job):  # its filing must not take its card's word (file_from_card)
        made(queue, "ended_unfiled").add(job.id)
    job.finish(Failure(error))
    job.complete()
    file_finished(queue, job)
    index_job(queue, job)  # (ended before a dispatcher filed it: listed all the same)
    for subjob in job.subjobs:
        if subjob.status == interfaces.NEW:
            subjob.finish(Failure(type(error)("Not run: its batch %s ended first: %s" % (job.id, error))))
            subjob.complete()
            file_finished(queue, subjob)
