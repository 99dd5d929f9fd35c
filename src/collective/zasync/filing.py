"""What a dispatcher does inside its transaction.

File the jobs that requests queued (their inboxes) and the jobs that job
threads completed, claim due jobs for idle threads, and take back
the jobs of a worker that stopped or died. Every function here works on the
queue database's objects in the caller's transaction; dispatcher.py runs
them, commits, and retries on ConflictError.
"""

from collective.zasync import batches
from collective.zasync import gate
from collective.zasync import interfaces
from collective.zasync.failure import Failure
from collective.zasync import ratelimits
from collective.zasync.dependencies import file_or_block
from collective.zasync.priority import due_items
from collective.zasync.priority import first_delayed_key
from collective.zasync.priority import tree_for
from collective.zasync.priority import waiting_trees
from collective.zasync.indexes import index_job
from collective.zasync.job import new_job_id
from collective.zasync.joblog import JobLog
from collective.zasync.queue import due_key
from collective.zasync.queue import due_time
from collective.zasync.queue import file_finished
from collective.zasync.queue import file_waiting
from collective.zasync.queue import is_filed_finished
from collective.zasync.queue import requeue
from collective.zasync.queue import timed_out
from collective.zasync.queue import waits
from collections import Counter

import itertools
import logging
import time
import zlib


log = logging.getLogger("collective.zasync")

FILE_BATCH = 500  # jobs filed from one inbox per pass: a backlog is filed in steps
CLAIM_SCAN_LIMIT = 200  # waiting entries looked at per queue and pass, at most
MAX_STARTS = 10  # a job whose worker died this many times while running it fails
RUNNABLE = (interfaces.ACTIVE, interfaces.CALLBACKS)  # states of a claimed job
NEGLECTED = 2.0  # seconds after which any dispatcher files an inbox that is not its own
QUEUE_PREFIX = "\0queue:"  # running-count key of a queue, apart from quota names


# -- filing --------------------------------------------------------------------------


def file_inboxes(queue, mine=None, limit=FILE_BATCH):
    """File the jobs requests queued in ``queue``; True if some are left for the next pass.

    ``mine(writer)``: whether this dispatcher files the inbox of ``writer``
    (see inbox_owner); None: every inbox.
    """
    left = False
    for writer, inbox in list(queue.inboxes.items()):
        if mine is not None and not mine(writer) and not _neglected(inbox):
            continue
        pairs = inbox.unread(limit)
        prefetch([job for _key, job in pairs])
        for _key, job in pairs:
            file_new(queue, job)
        inbox.mark_read(pairs)
        left = left or inbox.unread_count() > 0
    return left


def prefetch(objects):
    """Ask the storage for ``objects`` at once (ZEO: one pipelined request, not one round trip each)."""
    jar = objects[0]._p_jar if objects else None
    if jar is not None:
        jar.prefetch([obj for obj in objects if obj._p_changed is None])


def inbox_owner(root, uuid):
    """A test ``mine(writer)``: True for the inboxes worker ``uuid`` files.

    Two dispatchers filing one inbox both write its read mark, and one of
    them conflicts: so each inbox is filed by one live worker, chosen by a
    hash of its writer. An inbox its worker neglects (stopping, hung, not
    yet declared dead) is filed by anyone (see _neglected).
    """
    live = sorted(key for key, record in root.workers.items() if record.is_alive())
    if uuid not in live or len(live) == 1:
        return None
    index = live.index(uuid)
    return lambda writer: zlib.crc32(writer.encode()) % len(live) == index


def _neglected(inbox):
    """True if the oldest job of ``inbox`` not filed yet was queued over NEGLECTED seconds ago,
    and no dispatcher has read the inbox for as long.

    A backlog that its owner is filing (500 jobs a pass) is not neglected: two
    dispatchers filing one inbox at once write the same read mark and buckets.
    """
    read_at = inbox.mark.read_at
    if read_at is not None and time.time() - read_at <= NEGLECTED:
        return False
    first = inbox.unread(1)
    if not first:
        return False
    try:
        queued = int(first[0][0][:14], 16) / 1e6  # an inbox key is a job id: hex microseconds first
    except ValueError:
        return True
    return time.time() - queued > NEGLECTED


def file_new(queue, job):
    """A job arrived from an inbox: it waits, or its batch starts."""
    if job.status != interfaces.PENDING:
        return  # cancelled before it was filed: actions.cancel filed it as finished
    queue.jobs[job.id] = job
    index_job(queue, job)  # "My jobs" and the item's "Background jobs" (indexes.py)
    if job.recurrence is not None and job.recurrence.id not in queue.recurring:
        queue.recurring[job.recurrence.id] = job.recurrence
    if job.batch_kind:
        batches.start_batch(queue, job)
    elif job.depends_on:
        file_or_block(queue, job)  # waits, or is kept aside until its dependencies finished
    else:
        file_waiting(queue, job)


def file_completed(root, record):
    """Move the jobs that the threads of worker ``record`` completed to its done log.

    A job thread writes nothing but its job (and the job's own effects): the
    dispatcher finds the completed ones among the jobs its worker claimed,
    which are few (threads x prefetch) and in its cache until they change,
    and appends them to the worker's done log (``record.done``, a JobLog that
    only this dispatcher writes). One dispatcher files every worker's done
    log into the shared trees (see finisher and file_done_logs).
    """
    for finished, pairs in record.unread_finished():  # records written by earlier versions
        for _key, job in pairs:
            record.claimed.pop(job.id, None)
            file_done(root, job)
        finished.mark_read(pairs)
    claimed = list(record.claimed.items())
    prefetch([job for _id, job in claimed])
    for job_id, job in claimed:
        if job.status == interfaces.COMPLETED:
            del record.claimed[job_id]
            done_log(record).append(_log_key(record.done), job)
        elif job.status not in RUNNABLE or job.worker_uuid != record.uuid:
            # Retried from the control panel once completed, before we filed
            # it (then queued again): it is not this worker's any more.
            del record.claimed[job_id]


def done_log(record):
    """The JobLog of the jobs worker ``record`` completed, not filed yet (created on first use)."""
    if record.done is None:  # records of earlier versions have none
        record.done = JobLog(record.uuid)
    return record.done


def _log_key(log):
    """The next key of ``log``: a new job id (time first, see _neglected), increasing."""
    key = new_job_id()
    return key if key > log.last_key else log.last_key + "0"


def finisher(root, uuid):
    """True if worker ``uuid`` files the done logs of every worker.

    Filing a finished job writes trees that every dispatcher would write at
    the same end (``completed``, newest first; ``by_uid``): two dispatchers
    doing it at once split or empty the same bucket, which a BTree cannot
    resolve. So one live worker files them all, the first by uuid; a done
    log it neglects is filed by anyone (see _neglected).
    """
    live = sorted(key for key, record in root.workers.items() if record.is_alive())
    return uuid not in live or live[0] == uuid


def tidy(root, uuid):
    """The finisher's part of a pass (see finisher); True if some done jobs are left for the next.

    The finisher files every worker's done log and deletes the entries of
    ``waiting`` that other workers claimed (see claim); the other workers
    file only the done logs the finisher neglects.
    """
    mine = finisher(root, uuid)
    if mine:
        for queue in root.queues.values():
            drop_taken(queue)
    return file_done_logs(root, mine)


def drop_taken(queue, limit=CLAIM_SCAN_LIMIT, enough=50):
    """Delete the claimed entries among the first ``limit`` of each waiting tree of ``queue``.

    Claims take the first due entries: after ``enough`` waiting jobs in a row, none is left.
    """
    for _priority, tree in waiting_trees(queue):
        pairs = list(itertools.islice(tree.items(), limit))
        prefetch([job for _key, job in pairs])
        in_a_row = 0
        for key, job in pairs:
            if waits(key, job):
                in_a_row += 1
                if in_a_row >= enough:
                    break
                continue
            in_a_row = 0
            del tree[key]
            queue.waiting_count.change(-1)


def file_done_logs(root, everything, limit=FILE_BATCH):
    """File the jobs of the workers' done logs (``everything``: all, else only neglected ones).

    True if some are left for the next pass.
    """
    left = False
    for record in list(root.workers.values()):
        if record.done is not None and (everything or _neglected(record.done)):
            left = file_done_log(root, record, limit) or left
    return left


def file_done_log(root, record, limit=None):
    """File up to ``limit`` jobs of the done log of ``record``; True if some are left."""
    pairs = record.done.unread(limit) if record.done is not None else []
    prefetch([job for _key, job in pairs])
    for number, (key, job) in enumerate(pairs):
        if job.status in RUNNABLE and job.worker_uuid == record.uuid:
            # Its worker put it here once completed: this view of the job is older than
            # the log's. Read no further (it would be passed over, never filed); next pass.
            log.warning("Job %s in the done log of worker %s is %s here; filing it later.",
                        job.id, record.uuid, job.status)
            pairs = pairs[:number]
            break
        file_done(root, job)
    if pairs:
        record.done.mark_read(pairs)
    return record.done is not None and record.done.unread_count() > 0


def done_log_oids(root):
    """The oids of the workers' done logs: a dispatcher that files them is woken by their change."""
    return [record.done._p_oid for record in root.workers.values()
            if record.done is not None and record.done._p_oid is not None]


def file_done(root, job):
    """A job finished: file it, and what comes after it (batch, next run)."""
    if job.status != interfaces.COMPLETED:
        return  # retried from the control panel meanwhile
    queue = root.queues[job.queue_name]
    if is_filed_finished(queue, job):
        return  # retried and finished again before its first end was filed: filed once
    file_finished(queue, job)
    if job.parent is not None and job.parent.batch_kind:
        batches.advance_batch(queue, job)
    if job.recurrence is not None:
        batches.schedule_next_run(queue, job)


def take_back(root, record):
    """Worker ``record`` stopped or died: its claimed jobs wait again, its finished ones are filed."""
    file_completed(root, record)
    file_done_log(root, record)
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
    live = sorted(uuid for uuid, worker in root.workers.items() if worker.is_alive()) or [record.uuid]
    index = live.index(record.uuid) if record.uuid in live else 0
    claimed_now = [job for worker in root.workers.values() for job in worker.claimed.values()
                   if job.status != interfaces.COMPLETED]
    running = Counter(name for job in claimed_now for name in job.quota_names)
    running.update(QUEUE_PREFIX + job.queue_name for job in claimed_now)
    alone = gate.claim_alone(root, claimed_now, now, free, lambda job: _reserve_alone(root, job, running))
    if alone is gate.STOP:
        return []
    if alone:
        for job in alone:
            _take(job, now, record)
        return alone
    start = first_queue % len(queues)
    # The finisher deletes what it claims from ``waiting``; the others leave it to the
    # finisher, so that two dispatchers never empty or change one bucket at once.
    remove = finisher(root, record.uuid)
    offers = [
        _claimable(queue, due, free, len(live), running, index, remove)
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
    """When the first delayed job of any queue is due, or a full rate window reopens
    (seconds since 1970), or None."""
    due = due_key(now.timestamp())
    keys = (first_delayed_key(queue, due) for queue in root.queues.values())
    times = [due_time(key) for key in keys if key is not None]
    times.append(ratelimits.next_reopening(root.queues.values(), now.timestamp()))
    times.append(gate.next_look(root, now))  # a job waits to run alone, or runs alone
    return min((when for when in times if when is not None), default=None)


def _reserve_alone(root, job, running):
    """Count ``job`` as running and return True if its queue's concurrency and quotas let it
    start (it starts again: no rate window)."""
    queue = root.queues[job.queue_name]
    if queue.concurrency is not None and running[QUEUE_PREFIX + queue.name] >= queue.concurrency:
        return False
    if any(running[name] >= queue.quotas[name] for name in job.quota_names if _is_size(queue.quotas.get(name))):
        return False
    running.update(job.quota_names)
    running[QUEUE_PREFIX + queue.name] += 1
    return True


def _claimable(queue, due, wanted, workers, running, index=0, remove=True):
    """Due jobs of ``queue`` that may start now, taken out of ``waiting``.

    A queue with a concurrency runs its jobs in order: when the first due
    job may not start, none after it does. In other queues, jobs held back
    by a quota or a rate limit are passed over.
    """
    ordered = queue.concurrency is not None
    stamp = int(due[:16]) / 1_000_000  # now, as seconds since 1970
    held = None if ordered else (lambda job: _limits(queue, job, running, stamp)[2])
    for tree, key, job in _candidates(queue, due, wanted, 1 if ordered else workers, held, index):
        if ordered and running[QUEUE_PREFIX + queue.name] >= queue.concurrency:
            return
        unknown, windows, held_back = _limits(queue, job, running, stamp)
        if held_back:
            if ordered:
                return
            continue
        if ordered or job.quota_names:
            queue.limit_mark.claims += 1  # two dispatchers claiming under a limit conflict
        if remove:
            del tree[key]
            queue.waiting_count.change(-1)
        for window in windows:
            window.record(stamp)  # two dispatchers starting jobs under one rate limit conflict
        if unknown:
            # Deleted since the job was queued: this job fails, the queue goes on.
            fail_at_claim(job, LookupError(
                "Queue %r has no quota %s any more (or its size is not a whole number); set it "
                "again (queue.quotas[%r] = size, or a rate limit) and retry the job."
                % (queue.name, ", ".join(map(repr, unknown)), unknown[0])
            ))
        yield job


def _limits(queue, job, running, stamp):
    """(unknown quota names, rate windows to record, held back now) for ``job``."""
    unknown = [name for name in job.quota_names
               if not _is_size(queue.quotas.get(name)) and not ratelimits.is_known(queue, name)]
    if unknown:
        return unknown, [], False  # it fails when claimed
    quotas = [name for name in job.quota_names if _is_size(queue.quotas.get(name))]
    # Its events and callbacks (CALLBACKS) are no start: no rate limit applies.
    windows = ratelimits.windows_of(queue, job.quota_names) if job.status == interfaces.PENDING else []
    held_back = (any(running[name] >= queue.quotas[name] for name in quotas)
                 or any(window.is_full(stamp) for window in windows))
    return unknown, windows, held_back


def _is_size(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _candidates(queue, due, wanted, workers, held=None, index=0):
    """Due (tree, key, job) to claim from: highest priority first, then oldest first.

    Jobs for which ``held(job)`` is true are passed over (at most
    CLAIM_SCAN_LIMIT looked at), so that a backlog held back by a quota or
    a rate limit does not hide the jobs behind it. With several workers,
    worker number ``index`` of them first takes the oldest due jobs of the
    highest priority whose key hashes to it, so that two dispatchers
    claiming at once rarely delete the same keys (a conflict the BTree
    cannot resolve).
    """
    size = wanted * workers * 2
    items = due_items(queue, due)
    first = list(itertools.islice(items, 2 * size))
    prefetch([job for _priority, _key, job in first])  # one request for the jobs looked at
    window = []
    # Entries claimed by other workers and not deleted yet (see drop_taken) are passed over.
    waiting = (item for item in itertools.chain(first, items) if waits(item[1], item[2]))
    for looked_at, (priority, key, job) in enumerate(waiting, 1):
        if held is None or not held(job):
            window.append((priority, key, job))
        if looked_at >= CLAIM_SCAN_LIMIT or len(window) >= size:
            break
    top = sum(1 for item in window if item[0] == window[0][0]) if window else 0
    if workers > 1 and top > wanted:
        mine = [i for i in range(top) if zlib.crc32(window[i][1].encode()) % workers == index]
        others = [i for i in range(len(window)) if i not in set(mine)]
        window = [window[i] for i in mine + others]
    return [(tree_for(queue, priority), key, job) for priority, key, job in window]


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
