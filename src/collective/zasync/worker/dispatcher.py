"""The dispatcher: one per worker process; files, claims and hands out jobs. Not for add-ons
(``collective.zasync.testing`` starts one for tests).

Its loop, in one thread:

1. wait until woken (a commit touched an inbox, seen through the database's
   invalidations on ZEO; ``waiting`` changed and we would claim; a done log
   changed and we are the finisher; our threads need jobs: see hungry) or
   the poll interval ran out (short on RelStorage, which pushes nothing);
2. in one short transaction per pass (filing.py): file the jobs requests
   queued and the jobs our threads finished, and claim as many due jobs as
   there are idle threads (short jobs: several per thread, ahead of them);
3. hand the claimed jobs to its threads (runner.py runs them);
4. now and then: ping, declare silent workers dead (their jobs go back to the
   queue); the finisher removes finished jobs older than the retention (upkeep.py).

What its threads share, and under which lock: worker/shared.py.
"""

from collections import Counter
from collective.zasync import interfaces
from collective.zasync.core.job import utcnow
from collective.zasync.core.notifications import notify
from collective.zasync.core.notifications import postgres_dsn
from collective.zasync.core.queue import queue_connection
from collective.zasync.defaults import FAILING_RETRY
from collective.zasync.defaults import PREFETCH_FILING
from collective.zasync.defaults import PUSHED_POLL
from collective.zasync.defaults import REAP_EVERY
from collective.zasync.defaults import RETENTION_EVERY
from collective.zasync.defaults import RETENTION_FIRST
from collective.zasync.defaults import STEERED_QUIET
from collective.zasync.defaults import UNPUSHED_POLL
from collective.zasync.worker import claiming
from collective.zasync.worker import filing
from collective.zasync.worker import registration
from collective.zasync.worker import steering
from collective.zasync.worker import upkeep
from collective.zasync.worker.conflictgate import ConflictGate
from collective.zasync.worker.groupcommit import record_outcomes
from collective.zasync.worker.invalidations import unwatch_invalidations
from collective.zasync.worker.invalidations import watch_invalidations
from collective.zasync.worker.listener import Listener
from collective.zasync.worker.jobthread import JobThread
from collective.zasync.worker.settings import WorkerSettings
from collective.zasync.worker.shared import Holdings
from collective.zasync.worker.shared import LoopState
from collective.zasync.worker.shared import Wakeups
from collective.zasync.worker.transactions import Superseded
from collective.zasync.worker.transactions import Transactions
from collective.zasync.worker.turns import Turns

import logging
import os
import threading
import time


log = logging.getLogger("collective.zasync")


class Dispatcher:
    """Runs jobs of every queue in the database of ``db``, as worker ``uuid``."""

    def __init__(self, db, uuid, settings=None):
        self.db = db
        self.uuid = uuid
        self.settings = settings or WorkerSettings()
        self.gate = ConflictGate()  # shared by this worker's job threads (conflictgate.py)
        self.turns = Turns()  # likewise (turns.py)
        # This start of the worker, written on its record: a record with another one was
        # written by another process with this identity (registration.mine).
        self.incarnation = os.urandom(6).hex()
        self.me = registration.Identity(uuid, self.incarnation, self.settings)
        self.pushed = False  # the storage pushes invalidations (ZEO, FileStorage)
        self.listener = None  # PostgreSQL's notifications (RelStorage): worker/listener.py
        self.stats = Counter()  # claimed, conflicts, reaped_jobs, ...: written by the loop thread
        self.holdings = Holdings()
        self.wakeups = Wakeups()
        self.wakeup, self.stopping = self.wakeups.wakeup, self.wakeups.stopping
        self.loop_state = LoopState()
        self.transactions = self.conn = None  # made by connect()
        self._threads = []
        self._runners = []  # one per job thread
        self._loop_thread = None
        self._stopped = False

    @property
    def busy(self):
        """How many jobs this worker holds: running, or claimed and waiting for a thread."""
        return self.holdings.busy

    def in_transaction(self, func, *args):
        """Run ``func(root, *args)`` in a transaction of this dispatcher (conflicts retried)."""
        return self.transactions.run(func, *args)

    # -- life cycle ------------------------------------------------------------

    def connect(self):
        """Open the dispatcher's connection (``start`` does; a test or a benchmark drives a
        dispatcher whose loop does not run with it)."""
        self.transactions = Transactions(self.db, self.uuid, self.stats)
        self.conn = self.transactions.conn

    def start(self):
        """Register this worker, start its threads and its loop."""
        self.connect()
        self.in_transaction(registration.register, self.me)
        # With the queues in a database of their own (multi_db_*.zcml), their commits reach
        # that database's invalidations, not the main one's (whose oids mean other objects).
        self._queue_conn = queue_connection(self.conn)
        queue_db = self._queue_conn.db()
        pushed = self.pushed = watch_invalidations(queue_db, self.on_invalidation)
        dsn = None if pushed else postgres_dsn(queue_db)
        if dsn is not None:  # RelStorage on PostgreSQL pushes nothing, but PostgreSQL does
            self.listener = Listener(dsn, self.on_notification, name="zasync-listener")
            if self.listener.start():
                log.info("Worker %s: woken by PostgreSQL's notifications.", self.uuid)
        elif not pushed:
            log.info("Worker %s: the storage pushes no invalidations (RelStorage); "
                     "looking for new jobs every %g s.", self.uuid, self.poll_interval)
        for number in range(self.settings.threads):
            job_thread = JobThread(self, number)
            self._runners.append(job_thread.runner)
            thread = threading.Thread(target=job_thread.serve, name="zasync-job-%d" % number, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._loop_thread = threading.Thread(target=self.loop, name="zasync-dispatcher", daemon=True)
        self._loop_thread.start()
        log.info("Worker %s started with %d threads.", self.uuid, self.settings.threads)

    def stop(self, timeout=None):
        """Stop: running jobs get ``timeout`` seconds, the rest go back to the queue."""
        if self._stopped:
            return  # (a second SIGTERM, atexit after one)
        self._stopped = True
        timeout = self.settings.stop_timeout if timeout is None else timeout
        self.stopping.set()
        self.wakeup.set()
        self._loop_thread.join()
        # Jobs claimed ahead of time must not start now: they go back to the
        # queue with the rest when this worker unregisters.
        self.holdings.drop_waiting()
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        for _thread in self._threads:
            self.holdings.work.put(None)
        unwatch_invalidations(self._queue_conn.db(), self.on_invalidation)
        if self.listener is not None:
            self.listener.stop()
        # Jobs still running past the timeout are handed back too; the
        # bumped claim token makes their late commit fail, so their ZODB
        # effects happen once, where they run again.
        try:
            self.in_transaction(self.unregister)
            self.forget_recorded()
        except Exception:
            log.exception("Worker %s could not hand its jobs back as it stopped (is the database "
                          "unreachable?); a live worker takes them back once it declares this one "
                          "dead.", self.uuid)
        self.stats["objects loaded by the dispatcher"] = sum(
            conn.getTransferCounts()[0] for conn in {self.conn, self._queue_conn})
        self.transactions.close()
        self.stats["objects loaded by jobs"] = sum(runner.loads for runner in self._runners)
        self.stats["objects stored by jobs"] = sum(runner.stores for runner in self._runners)
        self.stats["shared commits"] = sum(runner.shared_commits for runner in self._runners)
        self.stats["jobs in shared commits"] = sum(runner.jobs_in_shared_commits for runner in self._runners)
        self.stats.update(self.turns.counts)
        log.info("Worker %s stopped (%s).", self.uuid, dict(self.stats))
        conflict_oids = self.transactions.conflict_oids
        if conflict_oids:
            log.info("Worker %s conflicted on objects %s.", self.uuid, dict(conflict_oids.most_common(50)))

    # -- the loop ----------------------------------------------------------------

    def loop(self):
        state = self.loop_state
        next_ping = next_reap = time.monotonic()
        next_retention = time.monotonic() + RETENTION_FIRST
        woken = False  # first pass, or the wait ran out: a pass is due
        while not self.stopping.is_set():
            self.wakeup.clear()
            if not woken or self.pass_needed():
                self.step("dispatch", self.dispatch)
            now = time.monotonic()
            if now >= next_ping:
                if self.step("ping", self.in_transaction, registration.ping, self.me):
                    next_ping = now + self.settings.ping_interval
                    if state.healthy_since is None:
                        state.healthy_since = now
                else:
                    state.healthy_since = None
            if now >= next_reap and self.may_reap(now):
                if self.step("reap", self.transactions.run_past_unloadable, self.reap):
                    next_reap = now + self.settings.death_interval / REAP_EVERY
            if now >= next_retention and upkeep.mine(self) and self.step("retention", self.retention_pass):
                # One batch per turn, so that pings go on between batches.
                next_retention = now + (0.0 if state.retention_backlog else RETENTION_EVERY)
            woken = self.wakeup.wait(FAILING_RETRY if state.failing else self.sleep_time())

    def step(self, name, func, *args):
        """Run one step of the loop; log its failure (once until it works again) and go on."""
        failing = self.loop_state.failing
        try:
            func(*args)
        except Superseded as exc:
            self.transactions.abort()
            log.error("%s", exc)
            self.stopping.set()  # (stop() then hands nothing back: nothing here is ours)
            return False
        except Exception:
            self.transactions.abort()
            if name not in failing:
                log.exception("Worker %s: %s failed; retrying every second.", self.uuid, name)
            failing.add(name)
            return False
        if name in failing:
            failing.discard(name)
            log.info("Worker %s: %s works again.", self.uuid, name)
        return True

    def pass_needed(self):
        """Woken up: is there work for a pass? Not if only threads that ended short
        jobs asked for more, and the pass that ran meanwhile claimed them: one pass,
        not two (what they ended is filed by the next, a few short jobs later)."""
        wakeups, state = self.wakeups, self.loop_state
        invalidated, wakeups.invalidated = wakeups.invalidated, False
        due = state.next_due is not None and state.next_due <= time.time()
        if invalidated or due or state.backlog:
            return True
        wants = wakeups.claimable or self.hungry() or not self.holdings.short_jobs()
        # Its last pass found only jobs steered to another worker: not again at once (sleep_time).
        return wants and time.monotonic() >= state.quiet_until

    def sleep_time(self):
        state = self.loop_state
        if state.backlog or state.retention_backlog:
            return 0.0
        timeout = self.poll_interval
        if state.next_due is not None:
            timeout = min(timeout, max(0.0, state.next_due - time.time()))
        quiet = state.quiet_until - time.monotonic()
        if quiet > 0 and self.wakeups.claimable:  # (a change of the waiting jobs came meanwhile)
            timeout = min(timeout, quiet)
        return min(timeout, self.settings.ping_interval)

    @property
    def poll_interval(self):
        """Seconds between looks when nothing wakes the loop: the setting, else by what pushes:
        ZEO's invalidations or PostgreSQL's notifications (a few seconds, as a fallback), or
        nothing (RelStorage while it cannot listen: often, one small query each)."""
        if self.settings.poll_interval:
            return self.settings.poll_interval
        pushed = self.pushed or (self.listener is not None and self.listener.listening)
        return PUSHED_POLL if pushed else UNPUSHED_POLL

    def may_reap(self, now):
        # After an outage (ZEO restart, network) every worker's ping is old:
        # give the others a full death interval to ping again before judging.
        healthy_since = self.loop_state.healthy_since
        return healthy_since is not None and now - healthy_since >= self.settings.death_interval

    def on_invalidation(self, oids, committer):
        """In the invalidation thread: wake the loop if a commit of another process touched
        what it watches (its own commits: what a pass leaves to do, it says: backlog)."""
        if committer is self._queue_conn._storage:
            return
        wakeups = self.wakeups
        if not wakeups.watched.isdisjoint(oids):
            wakeups.invalidated = True
            self.wakeup.set()
        elif self.hungry() and not wakeups.watched_if_hungry.isdisjoint(oids):
            wakeups.claimable = True
            self.wakeup.set()

    def on_notification(self, payload):
        """In the listener thread: a PostgreSQL notification ("kind:sender", or None when it
        listens again); wake the loop as on_invalidation would."""
        kind, _, sender = (payload or "").partition(":")
        if sender == self.uuid:
            return  # (what its own pass leaves to do, it says: backlog)
        if payload is None or kind == "queued" or (kind == "done" and self.loop_state.finisher):
            self.wakeups.invalidated = True
            self.wakeup.set()
        elif kind == "waiting" and self.hungry():
            self.wakeups.claimable = True
            self.wakeup.set()

    def hungry(self):
        """True if a pass would claim jobs: a thread is idle, or the jobs claimed
        ahead are down to one per thread (claimed now, more are there before those end)."""
        return self.capacity() > self.holdings.occupied and self.holdings.work.qsize() <= self.settings.threads

    # -- the job threads -----------------------------------------------------------

    def forget_recorded(self):
        """The pass committed: the outcomes it wrote are done with."""
        self.stats["group-committed"] += self.holdings.forget_recorded()

    # -- one pass: file, claim, hand out --------------------------------------

    def capacity(self):
        """How many claimed jobs this worker holds at most (running or waiting).

        Short jobs are claimed ahead of the threads, about PREFETCH_SECONDS of
        them per thread, so that one claim commit serves many jobs; long jobs
        are claimed only for idle threads, so that they are not kept from idle
        workers elsewhere. While its passes file a backlog, fewer are claimed
        ahead (PREFETCH_FILING): filing is what the other workers wait for.
        """
        ahead = self.holdings.ahead()
        if self.loop_state.backlog:
            ahead = min(ahead, PREFETCH_FILING)
        return self.settings.threads * (1 + ahead)

    def dispatch(self):
        """File new and finished jobs, claim due ones for idle threads; return how many."""
        self.wakeups.claimable = False  # (one arriving from here on: at worst a pass too many)
        free = 0 if self.stopping.is_set() else self.capacity() - self.holdings.occupied
        claimed = self.transactions.run_past_unloadable(self.file_and_claim, free)
        self.forget_recorded()
        self.holdings.add(claimed)
        # Committed, and our threads have the jobs it claimed: only now tell the other
        # workers (RelStorage), so that our jobs do not wait for that round trip.
        for payload in self.loop_state.notices:
            notify(self._queue_conn.db(), payload)
        self.stats["claimed"] += len(claimed)
        self.stats["passes"] += 1
        return len(claimed)

    def file_and_claim(self, root, free):
        state = self.loop_state
        state.passes += 1
        now = utcnow()
        me = registration.mine_or_again(root, self.me)
        held, outcomes = self.holdings.snapshot()  # (one lock: a finished job is held, or handed over)
        record_outcomes(root, me, outcomes)
        steering.note(me, self.gate.recent_conflicts(), time.time())  # (for the other workers' claims)
        filing.release_orphans(root, me, held)
        if self.settings.time_limit:
            filing.fail_overdue(root, me, dict(self.holdings.running_since), self.settings.time_limit,
                                time.time())
        filing.file_completed(root, me)
        finisher = state.finisher = filing.finisher(root, self.uuid)
        state.backlog = filing.tidy(root, self.uuid, finisher)
        self.wakeups.watched, self.wakeups.watched_if_hungry = filing.wake_oids(root, finisher)
        idle = max(0, self.settings.threads - self.holdings.occupied)  # (jobs under a limit: claiming.Limited)
        claimed = claiming.claim(root, me, free, now, state.passes, idle) if free > 0 else []
        # Hungry, and nothing to take but jobs steered to another worker (steering.py): the
        # passes of that worker change ``waiting`` all the time, and would wake this one as often.
        steered_away = free > 0 and not claimed and steering.elsewhere(root, self.uuid, now.timestamp())
        state.quiet_until = time.monotonic() + STEERED_QUIET if steered_away else 0.0
        state.next_due = claiming.next_due(root, now, self.uuid)
        # RelStorage: what to tell the other workers once this commits (dispatch).
        state.notices = (["%s:%s" % (kind, self.uuid) for kind in filing.changed_for_others(root, me)]
                         if self.listener is not None else [])
        return [(job._p_oid, job.claim_token) for job in claimed]

    # -- dead workers, stopping, retention ---------------------------------------

    def reap(self, root):
        self.stats["reaped_jobs"] += registration.reap(root, self.me)

    def unregister(self, root):
        try:
            record = registration.mine(root, self.me)
        except Superseded:
            return  # (the record and its jobs are the other process's)
        if record is not None:
            _held, outcomes = self.holdings.snapshot()
            record_outcomes(root, record, outcomes)
            for job in record.claimed.values():
                if (job._p_oid, job.claim_token) in self.holdings.dropped and job.status == interfaces.ACTIVE:
                    job.attempts -= 1  # claimed ahead, it never started here: no attempt
            filing.take_back(root, record)
            del root.workers[self.uuid]

    def retention_pass(self):
        """Remove one batch of finished jobs past the retention (worker/upkeep.py)."""
        return upkeep.retention_pass(self)

    def remove_old_jobs(self):
        """Remove every finished job past the retention, a batch per transaction."""
        return upkeep.remove_all_old_jobs(self)
