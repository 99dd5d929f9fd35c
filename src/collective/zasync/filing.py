"""What a dispatcher does inside its transaction.

File the jobs that requests queued (their inboxes) and the jobs that job
threads finished (their logs), claim due jobs for idle threads, and take back
the jobs of a worker that stopped or died. Every function here works on the
queue database's objects in the caller's transaction; dispatcher.py runs
them, commits, and retries on ConflictError.
"""

from collective.zasync import batches
from collective.zasync import interfaces
from collective.zasync.failure import Failure
from collective.zasync.queue import due_key
from collective.zasync.queue import due_time
from collective.zasync.queue import file_finished
from collective.zasync.queue import file_waiting
from collective.zasync.queue import requeue
from collective.zasync.queue import timed_out
from collections import Counter

import logging
import random


log = logging.getLogger("collective.zasync")

FILE_BATCH = 500  # jobs filed from one inbox per pass: a backlog is filed in steps
CLAIM_SCAN_LIMIT = 200  # waiting entries looked at per queue and pass, at most
MAX_STARTS = 10  # a job whose worker died this many times while running it fails
RUNNABLE = (interfaces.ACTIVE, interfaces.CALLBACKS)  # states of a claimed job
QUEUE_PREFIX = "\0queue:"  # running-count key of a queue, apart from quota names


# -- filing --------------------------------------------------------------------------


def file_inboxes(queue, limit=FILE_BATCH):
    """File the jobs requests queued in ``queue``; True if some are left for the next pass."""
    left = False
    for inbox in list(queue.inboxes.values()):
        pairs = inbox.unread(limit)
        for _key, job in pairs:
            file_new(queue, job)
        inbox.mark_read(pairs)
        left = left or inbox.unread_count() > 0
    return left


def file_new(queue, job):
    """A job arrived from an inbox: it waits, or its batch starts."""
    if job.status != interfaces.PENDING:
        return  # cancelled before it was filed: actions.cancel filed it as finished
    queue.jobs[job.id] = job
    if job.recurrence is not None and job.recurrence.id not in queue.recurring:
        queue.recurring[job.recurrence.id] = job.recurrence
    if job.batch_kind:
        batches.start_batch(queue, job)
    else:
        file_waiting(queue, job)


def file_finished_logs(root, record):
    """File the jobs that the threads of worker ``record`` finished."""
    for finished, pairs in record.unread_finished():
        for _key, job in pairs:
            record.claimed.pop(job.id, None)
            file_done(root, job)
        finished.mark_read(pairs)


def file_done(root, job):
    """A job finished: file it, and what comes after it (batch, next run)."""
    if job.status != interfaces.COMPLETED:
        return  # retried from the control panel meanwhile
    queue = root.queues[job.queue_name]
    file_finished(queue, job)
    if job.parent is not None and job.parent.batch_kind:
        batches.advance_batch(queue, job)
    if job.recurrence is not None:
        batches.schedule_next_run(queue, job)


def take_back(root, record):
    """Worker ``record`` stopped or died: its claimed jobs wait again, its finished ones are filed."""
    file_finished_logs(root, record)
    jobs = list(record.claimed.values())
    for job in jobs:
        requeue(root, job)
    return jobs


def release_orphans(root, record, held):
    """Give back jobs claimed by ``record`` that no thread holds (``held``: oid -> claim token).

    A thread that gave up on a job (the database unreachable for too long,
    an error around the job) leaves it claimed; without this it would stay
    active until its worker restarts.
    """
    for job in list(record.claimed.values()):
        if held.get(job._p_oid) != job.claim_token and job.status in RUNNABLE:
            log.warning("Job %s was claimed here but no thread runs it; it goes back to the queue.", job.id)
            requeue(root, job)


def fail_overdue(root, record, running_since, limit, now):
    """Fail the jobs of ``record`` that have run longer than ``limit`` seconds.

    ``running_since``: job oid -> when its thread began it (seconds since
    1970), so the time a job waited for a thread does not count. A thread
    cannot be stopped: it runs on until the function returns, but the bumped
    claim token makes its commit fail, so none of its work is kept.
    """
    for job in list(record.claimed.values()):
        began = running_since.get(job._p_oid)
        if job.status != interfaces.ACTIVE or began is None or now - began <= limit:
            continue
        fail_at_claim(job, TimeoutError(
            "Job %s ran longer than the time limit of %g s; its work was discarded." % (job.id, limit)
        ))
        requeue(root, job)  # waits again, for a thread to fire its events and callbacks


# -- claiming ----------------------------------------------------------------------------


def claim(root, record, free, now, first_queue=0):
    """Claim up to ``free`` due jobs for worker ``record``; return them.

    Each queue offers its due jobs oldest first; the queues take turns,
    starting with number ``first_queue`` (the dispatcher changes it every
    pass), so that a backlog in one queue does not keep the others waiting.
    """
    queues = list(root.queues.values())
    due = due_key(now.timestamp())
    claimed_now = [job for worker in root.workers.values() for job in worker.claimed.values()
                   if job.status != interfaces.COMPLETED]
    running = Counter(name for job in claimed_now for name in job.quota_names)
    running.update(QUEUE_PREFIX + job.queue_name for job in claimed_now)
    start = first_queue % len(queues)
    offers = [
        _claimable(queue, due, free, len(root.workers), running)
        for queue in queues[start:] + queues[:start]
    ]
    claimed = []
    while offers and len(claimed) < free:
        for offer in list(offers):
            job = next(offer, None)
            if job is None:
                offers.remove(offer)
                continue
            _take(job, now, record)
            running.update(job.quota_names)
            running[QUEUE_PREFIX + job.queue_name] += 1
            claimed.append(job)
            if len(claimed) >= free:
                break
    return claimed


def next_due(root, now):
    """When the first delayed job of any queue is due (seconds since 1970), or None."""
    due = due_key(now.timestamp())
    times = [due_time(next(iter(keys))) for keys in (q.waiting.keys(min=due) for q in root.queues.values()) if keys]
    return min(times, default=None)


def _claimable(queue, due, wanted, workers, running):
    """Due jobs of ``queue`` that may start now, taken out of ``waiting``.

    A queue with a concurrency runs its jobs in order: when the first due
    job may not start, none after it does.
    """
    ordered = queue.concurrency is not None
    for key, job in _candidates(queue, due, wanted, 1 if ordered else workers):
        if ordered and running[QUEUE_PREFIX + queue.name] >= queue.concurrency:
            return
        unknown = [name for name in job.quota_names if not _is_size(queue.quotas.get(name))]
        if not unknown and any(running[name] >= queue.quotas[name] for name in job.quota_names):
            if ordered:
                return
            continue
        if ordered or job.quota_names:
            queue.limit_mark.claims += 1  # two dispatchers claiming under a limit conflict
        del queue.waiting[key]
        queue.waiting_count.change(-1)
        if job.status not in (interfaces.PENDING, interfaces.CALLBACKS):
            continue  # cancelled while it waited: actions.cancel filed it as finished
        if unknown:
            # Deleted since the job was queued: this job fails, the queue goes on.
            fail_at_claim(job, LookupError(
                "Queue %r has no quota %s any more (or its size is not a whole number); set it "
                "again (queue.quotas[%r] = size) and retry the job."
                % (queue.name, ", ".join(map(repr, unknown)), unknown[0])
            ))
        yield job


def _is_size(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _candidates(queue, due, wanted, workers):
    """Due (key, job) pairs to claim from, oldest first.

    With several workers, each takes a random selection of the oldest due
    jobs, so that they do not all fight over the same first keys.
    """
    window = []
    for key, job in queue.waiting.items(max=due):
        window.append((key, job))
        if len(window) >= CLAIM_SCAN_LIMIT or len(window) >= wanted * workers * 2:
            break
    if workers > 1 and len(window) > wanted:
        chosen = sorted(random.sample(range(len(window)), wanted))
        rest = [i for i in range(len(window)) if i not in set(chosen)]
        window = [window[i] for i in chosen + rest]
    return window


def _take(job, now, record):
    """Make ``job`` the worker's: its function, or its events and callbacks, run there."""
    if job.status == interfaces.PENDING and timed_out(job, now):
        fail_at_claim(job, TimeoutError(
            "Job %s could not start before %s." % (job.id, (job.begin_after or job.queued) + job.begin_by)
        ))
    elif job.status == interfaces.PENDING and job.unfinished_starts() >= MAX_STARTS:
        fail_at_claim(job, RuntimeError(
            "Job %s was started %d times and never finished: its worker died or was "
            "stopped while running it each time. Retry it once the cause is fixed."
            % (job.id, job.attempts)
        ))
    job.claim(record.uuid, now)
    if job.status == interfaces.CALLBACKS and job.callback_claims > MAX_STARTS:
        _give_up_callbacks(job)
    record.claimed[job.id] = job


def fail_at_claim(job, exc):
    """Store ``exc`` as the job's failure; a thread fires its events and callbacks."""
    job.finish(Failure(exc))
    log.error("Job %s (%s) failed: %s", job.id, job.describe(), job.result)


def _give_up_callbacks(job):
    """Its thread died in its events or callbacks each time: complete it without them."""
    times = job.callback_claims - 1
    log.error("Job %s: its events and callbacks were started %d times and never finished; "
              "the job completes without them.", job.id, times)
    job.events_fired = True
    for callback in job.callbacks_to_run():
        callback.finish(Failure(RuntimeError(
            "Not run: the callbacks of job %s were started %d times and never finished." % (job.id, times)
        )))
        callback.complete()
