"""Serial and parallel batches, and recurring jobs: what the dispatcher files next.

Called by the dispatcher inside its transaction, when it files a claimed
batch or a finished job.
"""

from collective.zasync import interfaces
from collective.zasync.failure import Failure
from collective.zasync.indexes import index_job
from collective.zasync.job import utcnow
from collective.zasync.queue import file_finished
from collective.zasync.queue import file_waiting


def start_batch(queue, batch):
    """A batch job was claimed: file its first (serial) or all (parallel) sub-jobs not run yet."""
    batch.begin(utcnow())
    queue.batches[batch.id] = batch
    for subjob in batch.subjobs:
        queue.jobs[subjob.id] = subjob
    # A retried batch keeps the sub-jobs that succeeded: only NEW ones run.
    waiting = [subjob for subjob in batch.subjobs if subjob.status == interfaces.NEW]
    for subjob in waiting[:1] if batch.batch_kind == "serial" else waiting:
        file_waiting(queue, subjob)


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
