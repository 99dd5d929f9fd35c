"""What a dispatcher's threads share, in three small objects, each with who writes it and its
lock story. Not for add-ons.

A worker process has one loop thread (worker/dispatcher.py), its job threads, and the
thread that delivers the database's invalidations (worker/invalidations.py).
"""

from collective.zasync.defaults import PREFETCH
from collective.zasync.defaults import PREFETCH_SECONDS
from collective.zasync.defaults import SHORT_JOB

import queue
import threading


class Holdings:
    """The jobs this worker holds (claimed: running, or waiting for a thread) and the outcomes
    its job threads handed over (group commit, worker/groupcommit.py).

    The loop thread adds what a pass claimed and writes the outcomes; the job threads release
    what they ran and hand outcomes over. ``lock`` guards ``busy``, ``held``, ``outcomes``,
    ``recorded``, ``finishing`` and ``average_run``, all together: a pass sees a finished job held, or its
    outcome handed over, never neither. ``work`` is a thread-safe queue of its own;
    ``running_since`` has one key per job thread, written by that thread (a dict's single
    operations are atomic), read by the loop thread as a copy.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.work = queue.Queue()  # (oid, claim token) to run; None stops a job thread
        self.busy = 0  # claimed and not done with: waiting in work, running, or waiting for a commit
        self.finishing = 0  # of those, how many only wait for their group's commit (worker/grouping.py)
        self.held = {}  # job oid -> claim token, for every job counted in busy
        self.dropped = set()  # (oid, token) of jobs claimed ahead that stop() kept from starting
        self.running_since = {}  # job oid -> time.time() its thread began it
        self.outcomes = []  # (oid, token, attributes) handed over by job threads
        self.recorded = 0  # how many of them the current pass writes
        self.average_run = None  # seconds, moving average of recent jobs

    def add(self, claimed):
        """A pass claimed ``claimed``: (oid, token) pairs, handed to the job threads."""
        with self.lock:
            self.busy += len(claimed)
            self.held.update(claimed)
        for item in claimed:
            self.work.put(item)

    def release(self, oid, token):
        """Forget a claimed job: it finished, or it will not run here."""
        with self.lock:
            self.busy -= 1
            if self.held.get(oid) == token:
                del self.held[oid]

    @property
    def occupied(self):
        """Claimed jobs that need a thread: waiting in work or running."""
        return self.busy - self.finishing

    def next_waiting(self):
        """The next claimed job waiting in work, or None (a stop request stays there)."""
        try:
            item = self.work.get_nowait()
        except queue.Empty:
            return None
        if item is None:
            self.work.put(None)
        return item

    def finishing_more(self, count):
        """``count`` more (or fewer) jobs only wait for their group's commit."""
        with self.lock:
            self.finishing += count

    def ran(self, seconds):
        """A job thread ran a job for ``seconds``."""
        with self.lock:
            average = self.average_run
            self.average_run = seconds if average is None else 0.8 * average + 0.2 * seconds

    def short_jobs(self):
        """True if the jobs run lately were short (SHORT_JOB): claiming ahead pays for them."""
        average = self.average_run
        return average is not None and average < SHORT_JOB

    def ahead(self):
        """How many jobs to claim per thread ahead of it: about PREFETCH_SECONDS of short jobs
        (at least 1, at most PREFETCH); none of long ones."""
        average = self.average_run
        if average is None or average >= SHORT_JOB:
            return 0
        return min(PREFETCH, max(1, int(PREFETCH_SECONDS / max(average, 1e-6))))

    def hand_over(self, oid, token, outcome):
        """A job thread's job wrote nothing: its outcome is committed by the next pass."""
        with self.lock:
            self.outcomes.append((oid, token, outcome))

    def snapshot(self):
        """(held, outcomes) as one pass sees them; the outcomes are the pass's to record."""
        with self.lock:
            outcomes = list(self.outcomes)
            self.recorded = len(outcomes)
            return dict(self.held), outcomes

    def forget_recorded(self):
        """The pass committed: the outcomes it wrote are done with; return how many."""
        with self.lock:
            recorded, self.recorded = self.recorded, 0
            del self.outcomes[:recorded]
        return recorded

    def drop_waiting(self):
        """Stopping: the jobs claimed ahead, not started, will not run here."""
        while True:
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                return
            self.dropped.add(item)
            self.release(*item)


class Wakeups:
    """When the loop wakes up, and what it watches for.

    ``wakeup`` is set by the invalidation thread (a commit touched what the loop watches),
    by job threads (they want jobs) and by ``stop()``; ``stopping`` once, by ``stop()`` (or
    the loop, superseded). Events are thread-safe. ``watched`` and ``watched_if_hungry`` are
    frozensets the loop replaces whole each pass: a reader sees the old one or the new.
    ``invalidated`` and ``claimable`` are set by the invalidation thread, read and cleared by
    the loop: at worst one pass too many.
    """

    def __init__(self):
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.watched = frozenset()  # oids whose change wakes the loop (filing.wake_oids) ...
        self.watched_if_hungry = frozenset()  # ... and those that do when it would claim
        self.invalidated = False  # a commit changed what it watches since the last pass ...
        self.claimable = False  # ... or, while it would claim, the waiting jobs


class LoopState:
    """What the loop thread remembers from pass to pass; written and read by it alone
    (``failing`` is also read, as a whole, by the liveness probe: worker/probes.py;
    ``finisher``, a bool, by the listener thread: Dispatcher.on_notification)."""

    def __init__(self):
        self.passes = 0
        self.next_due = None  # when (time.time()) a delayed job is due, a rate window reopens ...
        self.healthy_since = None  # since when (monotonic) its pings work: it may declare others dead
        self.failing = set()  # the steps of the loop that failed last time
        self.backlog = False  # jobs are left in an inbox or done log: come back at once
        self.retention_backlog = False  # finished jobs past the retention are left: likewise
        self.finisher = False  # this worker files for all (filing.finisher), as of its last pass
        self.quiet_until = 0.0  # (monotonic) no pass before, unless there is work (Dispatcher.pass_needed)
        self.notices = []  # what the last pass tells the other workers once it committed (RelStorage)
