"""What a dispatcher files in its pass: the jobs requests queued (their inboxes), the jobs
its threads completed (done logs), and the jobs of a worker that stopped or died. Not for add-ons.

Claiming due jobs is claiming.py; what filing one job brings with it (a batch, its
dependents, the next run) is core/lifecycle.py. Every function here works on the
queue database's objects in the caller's transaction; dispatcher.py runs them,
commits, and retries on ConflictError.
"""

from collective.zasync import interfaces
from collective.zasync.core.job import new_job_id
from collective.zasync.core.job import utcnow
from collective.zasync.core.joblog import JobLog
from collective.zasync.core.keys import waits
from collective.zasync.core.lifecycle import fail_at_claim
from collective.zasync.core.lifecycle import file_done
from collective.zasync.core.lifecycle import file_from_card
from collective.zasync.core.lifecycle import file_new
from collective.zasync.core.lifecycle import forget_ended
from collective.zasync.core.lifecycle import requeue
from collective.zasync.core.priority import waiting_trees
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.setaside import load_error
from collective.zasync.core.setaside import stored_id
from collective.zasync.core.setaside import set_aside
from collective.zasync.core.trees import prefetch  # (claiming.py's too)
from collective.zasync.defaults import CLAIM_SCAN_LIMIT
from collective.zasync.defaults import FILE_BATCH
from collective.zasync.defaults import NEGLECTED

import itertools
import logging
import time


log = logging.getLogger("collective.zasync")

RUNNABLE = (interfaces.ACTIVE, interfaces.CALLBACKS)  # states of a claimed job


# -- filing --------------------------------------------------------------------------


def file_inboxes(queue, everything=True, limit=FILE_BATCH):
    """File the jobs requests queued in ``queue``; True if some are left for the next pass.

    ``everything``: file every inbox (the finisher does, see finisher); else
    only the inboxes it neglects (see _neglected).
    """
    left = False
    for inbox in list(queue.inboxes.values()):
        if not everything and not _neglected(inbox):
            continue
        entries = inbox.unread_cards(limit)
        # A plain job is filed from its card, never loaded (core/cards.py); the others are loaded.
        loaded = [job for _key, job, card in entries if card is None or not file_from_card(queue, job, card)]
        prefetch(loaded)
        for job in loaded:
            error = load_error(job)
            job_id = job.id if error is None else stored_id(job)
            forget_ended(queue, job_id)
            if error is None:
                file_new(queue, job)
            else:  # its pickle no longer loads: the others go on (core/setaside.py)
                set_aside(get_queue_root(queue._p_jar, create=False), job, error,
                          "queued in queue %r" % queue.name, job_id)
        inbox.mark_read(entries)
        left = left or inbox.unread_count() > 0
    return left


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
            done_log(record).append(_log_key(record.done, job_id), job)
        elif job.status not in RUNNABLE or job.worker_uuid != record.uuid:
            # Retried from the control panel once completed, before we filed
            # it (then queued again): it is not this worker's any more.
            del record.claimed[job_id]


def done_log(record):
    """The JobLog of the jobs worker ``record`` completed, not filed yet (created on first use)."""
    if record.done is None:  # records of earlier versions have none
        record.done = JobLog(record.uuid)
    return record.done


def _log_key(log, job_id):
    """The next key of ``log``: a new job id (time first, see _neglected), increasing; then
    ``job_id``, so that an entry tells whose it is without loading the job (core/setaside.py)."""
    key = new_job_id()
    key = key if key > log.last_key else log.last_key.split(" ", 1)[0] + "0"
    return "%s %s" % (key, job_id)


def job_id_of_done_key(key):
    """The id of the job under done-log key ``key`` (None for keys of earlier versions)."""
    return key.split(" ", 1)[1] if " " in key else None


def finisher(root, uuid):
    """True if worker ``uuid`` files what every worker queued and completed.

    Filing writes trees that every dispatcher would write at the same end
    (``waiting`` and the indexes, oldest last; ``completed``, newest first):
    two dispatchers doing it at once split or empty the same bucket, which a
    BTree cannot resolve. So one live worker, the first by uuid, files every
    inbox and done log, and deletes the waiting entries the others claimed;
    the others only claim. An inbox or done log it neglects (stopping, hung,
    not declared dead yet) is filed by anyone (see _neglected).
    """
    live = live_uuids(root)
    return uuid not in live or live[0] == uuid


def live_uuids(root):
    """The uuids of the live workers, sorted (the first is the finisher)."""
    return sorted(key for key, record in root.workers.items() if record.is_alive())


def tidy(root, uuid, mine=None):
    """The finisher's part of a pass (see finisher); True if some jobs are left for the next.

    The finisher files every inbox and done log and deletes the entries of
    ``waiting`` that other workers claimed (see claim); the other workers
    file only what the finisher neglects. (``mine``: finisher(root, uuid), if known.)
    """
    mine = finisher(root, uuid) if mine is None else mine
    left = file_done_logs(root, mine)
    for queue in root.queues.values():
        if mine:
            drop_taken(queue)
        left = file_inboxes(queue, mine) or left
    return left


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


def file_done_log(root, record, limit=None, taking_back=False):
    """File up to ``limit`` jobs of the done log of ``record``; True if some are left.

    ``taking_back``: the worker stopped or died, its record goes: file all of it.
    """
    pairs = record.done.unread(limit) if record.done is not None else []
    prefetch([job for _key, job in pairs])
    for number, (key, job) in enumerate(pairs):
        error = load_error(job)
        if error is not None:  # its pickle no longer loads: the others go on (core/setaside.py)
            set_aside(root, job, error, "completed by worker %s" % record.uuid, job_id_of_done_key(key))
            continue
        if job.status in RUNNABLE and job.worker_uuid == record.uuid and not taking_back:
            # Its worker put it here once completed: this view of the job is older than
            # the log's, or it was retried and claimed by the same worker since. Read no
            # further (it would be passed over, never filed); next pass. (A worker that is
            # taken back files its whole log: what runs again is requeued with its claims.)
            log.warning("Job %s in the done log of worker %s is %s here; filing it later.",
                        job.id, record.uuid, job.status)
            pairs = pairs[:number]
            break
        file_done(root, job)
    if pairs:
        record.done.mark_read(pairs)
    return record.done is not None and record.done.unread_count() > 0


def wake_oids(root, mine):
    """(oids whose change has work for a dispatcher, oids whose change matters only to one that wants jobs).

    New jobs in an inbox (or a new inbox) are filed by the finisher (``mine``)
    and by the others once neglected; completed jobs in a done log by the
    finisher only. Jobs added to ``waiting`` (filed, given back, released by
    their dependencies: ``waiting_added``) are work only for a dispatcher that
    would claim: waking the others would make every pass of one wake all the
    others, for passes that do nothing. Jobs taken out of it (claimed) are work
    for no one: a worker whose thread ends a job looks anyway, and one that
    may take a busy worker's jobs looks at the latest STEAL_AFTER seconds
    after they were due (claiming.next_due). So the finisher's passes, which
    claim all the time, do not wake the others: while it ran the jobs steered
    to it, an idle worker spent a tenth of a CPU looking (benchmarks/README.md).
    """
    always = set()
    for queue in root.queues.values():
        always.update(inbox._p_oid for inbox in queue.inboxes.values())
        always.add(queue.inbox_count._p_oid)
    if mine:
        always.update(record.done._p_oid for record in root.workers.values() if record.done is not None)
    if_hungry = {_added(queue)._p_oid for queue in root.queues.values()}
    return frozenset(always - {None}), frozenset(if_hungry - {None})


def _added(queue):
    """The counter of the jobs added to ``queue``'s waiting trees (a queue not migrated yet: its count)."""
    return queue.waiting_added if queue.waiting_added is not None else queue.waiting_count


def changed_for_others(root, record):
    """What this pass changed that other workers act on: "done" (jobs in the done log of
    ``record``: the finisher files them), "waiting" (jobs added to it: a worker with idle
    threads claims; see wake_oids). On ZEO the server's invalidations say it (wake_oids); RelStorage
    pushes nothing, so the dispatcher notifies (core/notifications.py)."""
    kinds = []
    if record.done is not None and record.done._p_changed:
        kinds.append("done")
    if any(_added(queue)._p_changed for queue in root.queues.values()):
        kinds.append("waiting")
    return kinds


def take_back(root, record):
    """Worker ``record`` stopped or died: its claimed jobs wait again, its finished ones are filed."""
    # Written, as every claim writes it: a claim committed meanwhile (which this view of
    # ``claimed`` would not show) makes this commit conflict, and the retry sees it.
    record.taken_back = utcnow()
    file_completed(root, record)
    file_done_log(root, record, taking_back=True)
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
