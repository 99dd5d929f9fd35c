"""Claiming due jobs for a worker's idle threads, inside its dispatcher's transaction.

Each queue offers its due jobs by priority, then oldest first; queues take
turns; a queue's concurrency, quotas and rate limits count the jobs claimed
by every worker. With several workers, each takes first the due keys that
hash to it, so that two dispatchers claiming at once rarely write the same
objects. filing.py files what comes in and what finished. Not for add-ons.
"""

from collections import Counter
from collective.zasync import interfaces
from collective.zasync.core import alonegate
from collective.zasync.core import ratelimits
from collective.zasync.core.failure import Failure
from collective.zasync.core.keys import due_key
from collective.zasync.core.keys import due_time
from collective.zasync.core.keys import waits
from collective.zasync.core.lifecycle import fail_at_claim
from collective.zasync.core.places import timed_out
from collective.zasync.core.priority import due_items
from collective.zasync.core.priority import first_delayed_key
from collective.zasync.core.priority import tree_for
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.setaside import load_error
from collective.zasync.core.setaside import set_aside_waiting
from collective.zasync.defaults import CLAIM_SCAN_LIMIT
from collective.zasync.defaults import MAX_STARTS
from collective.zasync.defaults import STEAL_AFTER
from collective.zasync.worker import steering
from collective.zasync.worker.filing import finisher
from collective.zasync.worker.filing import live_uuids
from collective.zasync.worker.filing import prefetch

import itertools
import logging
import zlib


log = logging.getLogger("collective.zasync")

QUEUE_PREFIX = "\0queue:"  # running-count key of a queue, apart from quota names


def claim(root, record, free, now, first_queue=0, idle=None):
    """Claim up to ``free`` due jobs for worker ``record``; return them.

    Each queue offers its due jobs oldest first; the queues take turns,
    starting with number ``first_queue`` (the dispatcher changes it every
    pass), so that a backlog in one queue does not keep the others waiting.
    ``idle``: how many of its threads have no job; with other live workers,
    jobs that take a slot of a limit (a queue's concurrency, a quota's size)
    are claimed for those only (see Limited). None: as many as ``free``.
    """
    queues = list(root.queues.values())
    due = due_key(now.timestamp())
    claimed = [job for worker in root.workers.values() for job in worker.claimed.values()]
    prefetch(claimed)  # (one request for those that changed since the last pass: most of them)
    claimed_now = [job for job in claimed if job.status != interfaces.COMPLETED]
    running = Counter(name for job in claimed_now for name in job.quota_names)
    running.update(QUEUE_PREFIX + job.queue_name for job in claimed_now)
    alone = alonegate.claim_alone(root, claimed_now, now, free, lambda job: _reserve_alone(root, job, running))
    if alone is alonegate.STOP:
        return []
    if alone:
        for job in alone:
            _take(job, now, record)
        return alone
    start = first_queue % len(queues)
    # The finisher deletes what it claims from ``waiting``; the others leave it to the
    # finisher, so that two dispatchers never empty or change one bucket at once.
    remove = finisher(root, record.uuid)
    share = shares(root, record.uuid, now)
    limited = Limited(idle) if share is not None and idle is not None else None
    offers = [Offer(queue, due, free, share, remove, limited) for queue in queues[start:] + queues[:start]]
    claimed = []
    while offers and len(claimed) < free:
        for offer in list(offers):
            job = offer.take(running)
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


def shares(root, uuid, now):
    """Who takes which waiting job first, for worker ``uuid``: a Share; None with one live worker."""
    live = live_uuids(root)
    if uuid not in live or len(live) < 2:
        return None
    return Share(root, uuid, live, now)


class Share:
    """Which waiting jobs are worker ``uuid``'s, and which of the others' it may take.

    Two dispatchers claiming the same job at once conflict: one of them
    loses its whole pass. So each waiting key belongs to one live worker (a
    hash of the key), which takes it first. Another worker takes it only
    when its own run out, and only if its owner cannot take it now: all its
    threads are busy, or it was due over STEAL_AFTER seconds ago (its worker
    is stopping, hung, or not declared dead yet). The jobs of a kind that
    conflicted lately belong to one worker by their kind instead (steering.py).
    """

    def __init__(self, root, uuid, live, now):
        self.uuid = uuid
        self.workers = workers = root.workers
        self.live = live
        self.stamp = now.timestamp()
        self.busy = {key for key in live if _holds(workers[key]) >= workers[key].threads}
        self.late = due_key(self.stamp - STEAL_AFTER)
        self.steered = steering.owners(root, live, self.stamp)  # kind -> its worker's uuid

    def owner(self, key, job):
        """The uuid of the worker that takes the job under waiting key ``key`` first."""
        return (steering.steered_owner(self.steered, job)
                or self.live[zlib.crc32(key.encode()) % len(self.live)])

    def mine(self, key, job):
        return self.owner(key, job) == self.uuid

    def may_take(self, key, job):
        """For another worker's job: True if this worker may take it now."""
        owner = steering.steered_owner(self.steered, job)
        if owner is not None:
            return self.stamp > steering.takeable_after(self.workers[owner])
        return key <= self.late or self.owner(key, job) in self.busy

    def steered_away(self, job):
        """True if ``job`` belongs to another worker by its kind (steering.py)."""
        owner = steering.steered_owner(self.steered, job)
        return owner is not None and owner != self.uuid

    def steal_time(self, key, job):
        """When (seconds since 1970) this worker may take another worker's job, if nothing
        changes meanwhile."""
        owner = steering.steered_owner(self.steered, job)
        if owner is not None:
            return steering.takeable_after(self.workers[owner])
        return due_time(key) + STEAL_AFTER


def _holds(worker):
    """How many unfinished jobs ``worker`` holds (running, or claimed ahead of its threads)."""
    return sum(1 for job in worker.claimed.values() if job.status != interfaces.COMPLETED)


def next_due(root, now, uuid=None):
    """When the first delayed job of any queue is due, a full rate window reopens, or
    worker ``uuid`` may take a job left to another (seconds since 1970), or None."""
    due = due_key(now.timestamp())
    keys = (first_delayed_key(queue, due) for queue in root.queues.values())
    times = [due_time(key) for key in keys if key is not None]
    times.append(ratelimits.next_reopening(root.queues.values(), now.timestamp()))
    times.append(alonegate.next_look(root, now))  # a job waits to run alone, or runs alone
    if uuid is not None:
        times.append(_next_steal(root, uuid, now))
    return min((when for when in times if when is not None), default=None)


def _next_steal(root, uuid, now, looked_at=50):
    """When the oldest due job that another worker has not claimed yet may be taken by
    worker ``uuid`` (see shares), if that is still to come; else None.

    Its own worker may be stopping, or hung and not declared dead yet: nothing
    else would wake this worker then.
    """
    share = shares(root, uuid, now)
    if share is None:
        return None
    due = due_key(now.timestamp())
    times = []
    for queue in root.queues.values():
        if queue.concurrency is None:  # (a queue that runs its jobs in order is not shared)
            for _priority, key, job in itertools.islice(due_items(queue, due), looked_at):
                if not share.mine(key, job) and waits(key, job):
                    times.append(share.steal_time(key, job))
                    break
    return min((when for when in times if when > now.timestamp()), default=None)


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


class Limited:
    """How many more jobs under a limit one pass may claim: one per idle thread.

    A worker claims short jobs ahead of its threads (the dispatcher's
    capacity), so that one claim commit serves several jobs. A job claimed
    ahead holds its slot of its queue's concurrency, or of its quota, while
    it waits for a thread: with other workers, one that claims ahead would
    hold every slot while their threads stay idle, and claim each slot again
    in the pass that writes the end of its job, before they can. So those
    jobs are claimed for idle threads only, and the slots go round.
    """

    def __init__(self, idle):
        self.left = idle

    def allows(self, queue, job):
        """True if ``job`` may be claimed now (a job under no limit always may)."""
        return self.left > 0 or not under_limit(queue, job)

    def took(self, queue, job):
        if under_limit(queue, job):
            self.left -= 1


def under_limit(queue, job):
    """True if ``job`` takes a slot of a limit while claimed: its queue's concurrency, a quota's size."""
    return queue.concurrency is not None or any(_is_size(queue.quotas.get(name)) for name in job.quota_names)


class Offer:
    """What one queue offers in one pass: its due jobs that may start now, one at a time.

    ``take(running)`` returns the next one, taken out of ``waiting`` (if ``remove``) with
    its limits recorded, or None once the queue has nothing more for this pass. A queue
    with a concurrency runs its jobs in order: when its first due job may not start, none
    after it does; in other queues, jobs held back by a quota or a rate limit are passed
    over. ``running`` counts the unfinished jobs claimed by every worker, this pass's
    included (``claim`` counts each job it takes): the queue's candidates are looked up
    at its first ``take``, with the counts of that moment.
    """

    def __init__(self, queue, due, wanted, share, remove=True, limited=None):
        self.queue = queue
        self.due = due
        self.wanted = wanted
        self.share = share
        self.remove = remove
        self.limited = limited  # a Limited shared by the pass's offers, or None
        self.ordered = queue.concurrency is not None
        self.stamp = int(due[:16]) / 1_000_000  # now, as seconds since 1970
        self.candidates = None  # an iterator of (tree, key, job), from the first take on

    def take(self, running):
        """The next job of the queue that may start now, made ready to claim; or None."""
        queue = self.queue
        if self.candidates is None:
            held = None if self.ordered else (lambda job: _limits(queue, job, running, self.stamp)[2])
            share = None if self.ordered else self.share
            self.candidates = iter(_candidates(queue, self.due, self.wanted, share, held))
        for tree, key, job in self.candidates:
            if self.ordered and running[QUEUE_PREFIX + queue.name] >= queue.concurrency:
                break
            unknown, windows, held_back = _limits(queue, job, running, self.stamp)
            held_back = held_back or (self.limited is not None and not self.limited.allows(queue, job))
            if held_back and self.ordered:
                break
            if not held_back:
                self._start(tree, key, job, unknown, windows)
                if self.limited is not None:
                    self.limited.took(queue, job)
                return job
        self.candidates = iter(())  # (in order: nothing after the first that may not start)
        return None

    def _start(self, tree, key, job, unknown, windows):
        """Record the claim under the queue's limits; take the entry out of ``waiting``."""
        queue = self.queue
        if self.ordered or job.quota_names:
            queue.limit_mark.claims += 1  # two dispatchers claiming under a limit conflict
        if self.remove:
            del tree[key]
            queue.waiting_count.change(-1)
        for window in windows:
            window.record(self.stamp)  # two dispatchers starting jobs under one rate limit conflict
        if unknown:
            # Deleted since the job was queued: this job fails, the queue goes on.
            fail_at_claim(job, LookupError(
                "Queue %r has no quota %s any more (or its size is not a whole number); set it "
                "again (queue.quotas[%r] = size, or a rate limit) and retry the job."
                % (queue.name, ", ".join(map(repr, unknown)), unknown[0])
            ))


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


def _candidates(queue, due, wanted, share=None, held=None):
    """Due (tree, key, job) to claim from: highest priority first, then oldest first.

    Jobs for which ``held(job)`` is true are passed over (at most
    CLAIM_SCAN_LIMIT looked at), so that a backlog held back by a quota or
    a rate limit does not hide the jobs behind it. With several workers
    (``share``, see shares), within each priority a worker's own jobs come
    first, oldest first, then the others' it may take, newest first: their
    own worker takes them from the other end. A backlog steered to another
    worker (steering.py) is looked at one chunk deep: that worker claims
    from its head all the time, so each pass would load the jobs it claimed
    since the last, every job once, to take none (a worker beside a
    steered backlog loaded 8,000 jobs for 6,000 run elsewhere).
    """
    own, others, unloadable = [], [], []
    items = due_items(queue, due)
    looked_at = 0
    while len(own) < 2 * wanted and looked_at < CLAIM_SCAN_LIMIT:
        chunk = list(itertools.islice(items, 4 * wanted))
        if not chunk:
            break
        prefetch([job for _priority, _key, job in chunk])  # one request for the jobs looked at
        open_entries = steered_away = 0  # (this chunk's)
        for priority, key, job in chunk:
            error = load_error(job)
            if error is not None:  # its code changed, maybe since it was filed unloaded (core/cards.py)
                unloadable.append((priority, key, job, error))
                continue
            # Entries claimed by other workers and not deleted yet (see drop_taken) are passed over.
            if not waits(key, job):
                continue
            looked_at += 1
            if held is not None and held(job):
                continue
            open_entries += 1
            if share is None or share.mine(key, job):
                own.append((priority, key, job))
            elif share.may_take(key, job):
                others.append((priority, key, job))
            elif share.steered_away(job):
                steered_away += 1
        if open_entries and steered_away == open_entries:
            break
    for priority, key, job, error in unloadable:  # (once the trees are read: this deletes their entries)
        set_aside_waiting(get_queue_root(queue._p_jar, create=False), queue, tree_for(queue, priority),
                          key, job, error)
    # Within each priority, highest first: own jobs oldest first, then the others' newest first.
    ranked = [(item, 0, number) for number, item in enumerate(own)]
    ranked += [(item, 1, -number) for number, item in enumerate(others)]
    ranked.sort(key=lambda entry: (-entry[0][0], entry[1], entry[2]))
    return [(tree_for(queue, priority), key, job) for (priority, key, job), _kind, _number in ranked]


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
    record.last_claim = now.timestamp()  # (its steered jobs wait for it while it claims: steering.py)
    # Written on every claim, as take_back writes it: a worker declared dead at this very
    # moment by another (whose view of ``claimed`` is older) makes one of the two commits
    # conflict, so that no claim is made on a record that is being deleted.
    record.claims += 1


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
