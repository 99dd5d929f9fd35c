"""The dispatcher: one per worker process; files, claims and hands out jobs.

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
   queue), remove finished jobs older than the retention.

A ConflictError in its own transactions only means another worker got there
first: abort, wait a random moment, try again.
"""

from collective.zasync import interfaces
from collective.zasync import claiming
from collective.zasync import filing
from collective.zasync.cancelling import drop_stale_requests
from collective.zasync.completions import record_outcomes
from collective.zasync.gate import ConflictGate
from collective.zasync.invalidations import unwatch_invalidations
from collective.zasync.invalidations import watch_invalidations
from collective.zasync.job import utcnow
from collective.zasync.migration import migrate
from collective.zasync.pgnotify import Listener
from collective.zasync.pgnotify import notify_after_commit
from collective.zasync.pgnotify import postgres_dsn
from collective.zasync.queue import get_queue_root
from collective.zasync.queue import queue_connection
from collective.zasync.queue import remove_old_jobs
from collective.zasync.queue import retire_idle_inboxes
from collective.zasync.queue import RETENTION_BATCH
from collective.zasync.records import WorkerRecord
from collective.zasync.runner import backoff
from collective.zasync.setaside import set_aside_unloadable
from collective.zasync.runner import JobRunner
from collective.zasync.transactional import commit
from collective.zasync.workersettings import WorkerSettings
from collections import Counter
from ZODB.POSException import ConflictError

import logging
import os
import queue as stdqueue
import threading
import time
import transaction


log = logging.getLogger("collective.zasync")

PREFETCH = 7  # short jobs: claim this many per thread ahead of time
SHORT_JOB = 0.05  # seconds: jobs faster than this on average are "short"
RETENTION_EVERY = 300.0  # seconds between retention runs
PUSHED_POLL = 5.0  # default poll interval where commits are pushed (ZEO, FileStorage)
UNPUSHED_POLL = 0.05  # ... and where they are not (RelStorage): one cheap query per poll


class WorkerIdentityInUse(RuntimeError):
    """Another live process runs with this worker's identity (its UUID)."""


class Superseded(RuntimeError):
    """This worker was declared dead while alive (frozen, cut off), and another process
    started with its identity since: this one must not touch that one's record or jobs."""


class Dispatcher:
    """Runs jobs of every queue in the database of ``db``, as worker ``uuid``."""

    def __init__(self, db, uuid, settings=None):
        self.db = db
        self.uuid = uuid
        self.settings = settings or WorkerSettings()
        self.gate = ConflictGate()  # shared by this worker's job threads (gate.py)
        # This start of the worker, written on its record: a record with another one was
        # written by another process with this identity (see _mine).
        self.incarnation = os.urandom(6).hex()
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self._stopped = False
        self.stats = Counter()  # claimed, conflicts, reaped_jobs
        self.conflict_oids = Counter()  # oid (hex) -> conflicts on that object
        self._work = stdqueue.Queue()
        self._busy = 0  # claimed and not finished: running or waiting in _work
        self._held = {}  # job oid -> claim token, for every job counted in _busy
        self._dropped = set()  # (oid, token) of jobs claimed ahead that stop() kept from starting
        self._running_since = {}  # job oid -> time.time() its thread began it
        self._outcomes = []  # (oid, token, attributes) handed over by job threads (completions.py)
        self._recorded = 0  # how many of them the current pass writes
        self._lock = threading.Lock()
        self._watched = frozenset()  # oids whose change wakes the loop (filing.wake_oids) ...
        self._watched_if_hungry = frozenset()  # ... and those that do when it would claim
        self._threads = []
        self._next_due = None
        self._healthy_since = None
        self._failing = set()  # the steps of the loop that failed last time
        self._backlog = False  # jobs are left in an inbox: come back at once
        self._invalidated = False  # a commit changed what it watches since the last pass
        self._retention_backlog = False
        self._passes = 0
        self._average_run = None  # seconds, moving average of recent jobs
        self._pushed = False  # the storage pushes invalidations (ZEO, FileStorage)
        self._listener = None  # PostgreSQL's notifications (RelStorage), see pgnotify.py
        self._finisher = False  # this worker files for all (filing.finisher), as of its last pass

    # -- life cycle ------------------------------------------------------------

    def start(self):
        """Register this worker, start its threads and its loop."""
        self.tm = transaction.TransactionManager()
        self.conn = self.db.open(transaction_manager=self.tm)
        self._in_transaction(self._register)
        # With the queues in a database of their own (multi_db_*.zcml), their commits reach
        # that database's invalidations, not the main one's (whose oids mean other objects).
        self._queue_conn = queue_connection(self.conn)
        queue_db = self._queue_conn.db()
        pushed = self._pushed = watch_invalidations(queue_db, self._on_invalidation)
        dsn = None if pushed else postgres_dsn(queue_db)
        if dsn is not None:  # RelStorage on PostgreSQL pushes nothing, but PostgreSQL does
            self._listener = Listener(dsn, self._on_notification, name="zasync-listener")
            if self._listener.start():
                log.info("Worker %s: woken by PostgreSQL's notifications.", self.uuid)
        elif not pushed:
            log.info("Worker %s: the storage pushes no invalidations (RelStorage); "
                     "looking for new jobs every %g s.", self.uuid, self._poll_interval())
        for number in range(self.settings.threads):
            thread = threading.Thread(
                target=self._run_jobs, args=(number,), name="zasync-job-%d" % number, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._loop_thread = threading.Thread(target=self._loop, name="zasync-dispatcher", daemon=True)
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
        self._drop_waiting()
        deadline = time.monotonic() + timeout
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.05)
        for _thread in self._threads:
            self._work.put(None)
        unwatch_invalidations(self._queue_conn.db(), self._on_invalidation)
        if self._listener is not None:
            self._listener.stop()
        # Jobs still running past the timeout are handed back too; the
        # bumped claim token makes their late commit fail, so their ZODB
        # effects happen once, where they run again.
        try:
            self._in_transaction(self._unregister)
            self._forget_recorded()
        except Exception:
            log.exception("Worker %s could not hand its jobs back as it stopped (is the database "
                          "unreachable?); a live worker takes them back once it declares this one "
                          "dead.", self.uuid)
        self.conn.close()
        log.info("Worker %s stopped (%s).", self.uuid, dict(self.stats))
        if self.conflict_oids:
            log.info("Worker %s conflicted on objects %s.", self.uuid, dict(self.conflict_oids.most_common(50)))

    @property
    def busy(self):
        """How many jobs this worker holds: running, or claimed and waiting for a thread."""
        return self._busy

    def _drop_waiting(self):
        while True:
            try:
                item = self._work.get_nowait()
            except stdqueue.Empty:
                return
            self._dropped.add(item)
            self._release(*item)

    def _release(self, oid, token):
        """Forget a claimed job: it finished, or it will not run here."""
        with self._lock:
            self._busy -= 1
            if self._held.get(oid) == token:
                del self._held[oid]

    # -- the loop ----------------------------------------------------------------

    def _loop(self):
        next_ping = next_reap = time.monotonic()
        next_retention = time.monotonic() + 5.0
        woken = False  # first pass, or the wait ran out: a pass is due
        while not self.stopping.is_set():
            self.wakeup.clear()
            if not woken or self._pass_needed():
                self._step("dispatch", self.dispatch)
            now = time.monotonic()
            if now >= next_ping:
                if self._step("ping", self._in_transaction, self._ping):
                    next_ping = now + self.settings.ping_interval
                    if self._healthy_since is None:
                        self._healthy_since = now
                else:
                    self._healthy_since = None
            if now >= next_reap and self._may_reap(now):
                if self._step("reap", self._in_transaction_past_unloadable, self._reap):
                    next_reap = now + self.settings.death_interval / 4
            if now >= next_retention and self._step("retention", self._retention_pass):
                # One batch per pass, so that pings go on between batches.
                next_retention = now + (0.0 if self._retention_backlog else RETENTION_EVERY)
            woken = self.wakeup.wait(1.0 if self._failing else self._sleep_time())

    def _step(self, name, func, *args):
        """Run one step of the loop; log its failure (once until it works again) and go on."""
        try:
            func(*args)
        except Superseded as exc:
            self._abort()
            log.error("%s", exc)
            self.stopping.set()  # (stop() then hands nothing back: nothing here is ours)
            return False
        except Exception:
            self._abort()
            if name not in self._failing:
                log.exception("Worker %s: %s failed; retrying every second.", self.uuid, name)
            self._failing.add(name)
            return False
        if name in self._failing:
            self._failing.discard(name)
            log.info("Worker %s: %s works again.", self.uuid, name)
        return True

    def _pass_needed(self):
        """Woken up: is there work for a pass? Not if only threads that ended short
        jobs asked for more, and the pass that ran meanwhile claimed them: one pass,
        not two (what they ended is filed by the next, a few short jobs later)."""
        invalidated, self._invalidated = self._invalidated, False
        due = self._next_due is not None and self._next_due <= time.time()
        return invalidated or due or self._backlog or self.hungry() or not self._short_jobs()

    def _sleep_time(self):
        if self._backlog or self._retention_backlog:
            return 0.0
        timeout = self._poll_interval()
        if self._next_due is not None:
            timeout = min(timeout, max(0.0, self._next_due - time.time()))
        return min(timeout, self.settings.ping_interval)

    @property
    def poll_interval(self):
        return self._poll_interval()

    def _poll_interval(self):
        """Seconds between looks when nothing wakes the loop: the setting, else by what pushes:
        ZEO's invalidations or PostgreSQL's notifications (a few seconds, as a fallback), or
        nothing (RelStorage without notifications: often, one small query each)."""
        if self.settings.poll_interval:
            return self.settings.poll_interval
        pushed = self._pushed or (self._listener is not None and self._listener.listening)
        return PUSHED_POLL if pushed else UNPUSHED_POLL

    def _on_notification(self, payload):
        """A PostgreSQL notification (pgnotify.py): wake up as _on_invalidation would."""
        kind, _, sender = (payload or "").partition(":")
        if sender == self.uuid:
            return  # (what its own pass leaves to do, it says: _backlog)
        if (payload is None or kind == "queued" or (kind == "done" and self._finisher)
                or (kind == "waiting" and self.hungry())):
            self._invalidated = True
            self.wakeup.set()

    def _may_reap(self, now):
        # After an outage (ZEO restart, network) every worker's ping is old:
        # give the others a full death interval to ping again before judging.
        return self._healthy_since is not None and now - self._healthy_since >= self.settings.death_interval

    def _on_invalidation(self, oids, committer):
        # Not woken by its own commits: what a pass leaves to do, it says (_backlog).
        if committer is self._queue_conn._storage:
            return
        if not self._watched.isdisjoint(oids) or (
            self.hungry() and not self._watched_if_hungry.isdisjoint(oids)
        ):
            self._invalidated = True
            self.wakeup.set()

    def hungry(self):
        """True if a pass would claim jobs: a thread is idle, or the jobs claimed
        ahead are down to one per thread (claimed now, more are there before those end)."""
        return self.capacity() > self.busy and self._work.qsize() <= self.settings.threads

    def _run_jobs(self, slot):
        hand_over = self._hand_over if self.settings.group_commit else None
        runner = JobRunner(self.db, self.uuid, self.settings.max_retries, slot, hand_over, self.gate)
        while True:
            item = self._work.get()
            if item is None:
                return
            oid, token = item
            started = time.monotonic()
            self._running_since[oid] = time.time()
            try:
                runner.run(oid, token)
            except BaseException:
                # Nothing may end this thread while capacity() counts it; a job
                # left claimed is given back by the next pass (release_orphans).
                log.exception("Worker %s: job %r ended its thread's run abnormally.", self.uuid, oid)
            finally:
                self._running_since.pop(oid, None)
                self._release(oid, token)
                took = time.monotonic() - started
                with self._lock:
                    average = self._average_run
                    self._average_run = took if average is None else 0.8 * average + 0.2 * took
                # Claim more when the jobs claimed ahead are down to one per thread:
                # the pass runs while those do, so no thread waits for it; what
                # finished meanwhile is filed by that pass, several jobs in one commit.
                if self.hungry():
                    self.wakeup.set()

    def _hand_over(self, oid, token, outcome):
        """A job thread's job wrote nothing: its outcome is committed by the next pass."""
        with self._lock:  # (with _release: a pass sees the job held, or its outcome)
            self._outcomes.append((oid, token, outcome))

    def _record_outcomes(self, root, record):
        """Write the outcomes handed over so far; they are forgotten once committed."""
        with self._lock:
            outcomes = list(self._outcomes)
        record_outcomes(root, record, outcomes)
        self._recorded = len(outcomes)

    def _forget_recorded(self):
        """The pass committed: the outcomes it wrote are done with."""
        with self._lock:
            del self._outcomes[:self._recorded]
        self.stats["group-committed"] += self._recorded
        self._recorded = 0

    def _in_transaction(self, func, *args):
        """Run ``func(root, *args)`` in a transaction; retry on ConflictError."""
        for attempt in range(20):
            txn = self.tm.begin()
            # Named in the storage's history, as a job's commit is (history.py): what
            # a dispatcher wrote can be told from what jobs and requests wrote.
            txn.note("collective.zasync worker %s: %s" % (self.uuid, func.__name__.strip("_")))
            try:
                result = func(get_queue_root(self.conn), *args)
                commit(self.tm)
                return result
            except ConflictError as exc:
                self._abort()
                self.stats["conflicts"] += 1
                self.stats["conflicts on %s" % (exc.class_name or "unknown")] += 1
                if exc.oid is not None:  # which object: see benchmarks/run.py, conflicts by structure
                    self.conflict_oids["0x%x" % int.from_bytes(exc.oid, "big")] += 1
                # Another worker got there first; its commit is already
                # visible, so try again almost at once (a long pause here
                # would let one worker take all the jobs).
                time.sleep(backoff(attempt, base=0.002, cap=0.1))
            except BaseException:
                self._abort()
                raise
        raise RuntimeError("Worker %s: gave up after 20 conflicts." % self.uuid)

    def _in_transaction_past_unloadable(self, func, *args):
        """_in_transaction; on an error, set aside the jobs that cannot be loaded, and try again.

        A job whose pickle no longer loads (setaside.py) would fail every pass of
        every worker: it is set aside, and the queue goes on without it.
        """
        try:
            return self._in_transaction(func, *args)
        except Superseded:
            raise
        except Exception:
            if not self._in_transaction(set_aside_unloadable):
                raise
        return self._in_transaction(func, *args)

    def _abort(self):
        """Abort our transaction; with the storage gone (a database restart) that can fail too."""
        try:
            self.tm.abort()
        except Exception as exc:
            log.debug("Worker %s: abort failed: %r", self.uuid, exc)

    # -- one pass: file, claim, hand out --------------------------------------

    def capacity(self):
        """How many claimed jobs this worker holds at most (running or waiting).

        Short jobs are claimed a few at a time ahead of the threads, so that
        one claim commit serves several jobs; long jobs are claimed only for
        idle threads, so that they are not kept from idle workers elsewhere.
        """
        threads = self.settings.threads
        return threads * (1 + PREFETCH) if self._short_jobs() else threads

    def _short_jobs(self):
        return self._average_run is not None and self._average_run < SHORT_JOB

    def dispatch(self):
        """File new and finished jobs, claim due ones for idle threads; return how many."""
        free = 0 if self.stopping.is_set() else self.capacity() - self.busy
        claimed = self._in_transaction_past_unloadable(self._file_and_claim, free)
        self._forget_recorded()
        with self._lock:
            self._busy += len(claimed)
            self._held.update(claimed)
        for item in claimed:
            self._work.put(item)
        self.stats["claimed"] += len(claimed)
        self.stats["passes"] += 1
        return len(claimed)

    def _file_and_claim(self, root, free):
        self._passes += 1
        now = utcnow()
        me = self._mine(root)
        if me is None:  # declared dead by another worker while we were cut off
            log.warning("Worker %s was declared dead while alive; registering again.", self.uuid)
            me = self._register(root)
        with self._lock:  # (one lock: a finished job is held, or its outcome was handed over)
            held = dict(self._held)
            outcomes = list(self._outcomes)
        record_outcomes(root, me, outcomes)
        self._recorded = len(outcomes)
        filing.release_orphans(root, me, held)
        if self.settings.time_limit:
            filing.fail_overdue(root, me, dict(self._running_since), self.settings.time_limit, time.time())
        filing.file_completed(root, me)
        mine = self._finisher = filing.finisher(root, self.uuid)
        self._backlog = filing.tidy(root, self.uuid, mine)
        self._watched, self._watched_if_hungry = filing.wake_oids(root, mine)
        claimed = claiming.claim(root, me, free, now, self._passes) if free > 0 else []
        self._next_due = claiming.next_due(root, now, self.uuid)
        if self._listener is not None:  # RelStorage: tell the other workers what they act on
            for kind in filing.changed_for_others(root, me):
                notify_after_commit(self.tm.get(), self._queue_conn.db(), "%s:%s" % (kind, self.uuid))
        return [(job._p_oid, job.claim_token) for job in claimed]

    # -- pings, dead workers, retention -----------------------------------------

    def _register(self, root):
        migrate(root)
        previous = root.workers.get(self.uuid)
        if previous is not None and previous.is_alive() and previous.runs_elsewhere():
            raise WorkerIdentityInUse(
                "Worker %s is running already: on %s, pid %s, which pinged %s. Two processes with "
                "one identity would run the same jobs twice. Give each worker an identity of its "
                "own (ZASYNC_UUID, one file or value per worker, or per container replica), or "
                "stop the other one first." % (self.uuid, previous.host, previous.pid, previous.last_ping)
            )
        if previous is not None:
            # This worker restarted: what it had claimed was interrupted, what
            # it finished (committed) was not filed yet.
            filing.take_back(root, previous)
        record = root.workers[self.uuid] = WorkerRecord(
            self.uuid, self.settings.threads, self.settings.death_interval, self.incarnation
        )
        return record

    def _mine(self, root):
        """This worker's record; None if it has none; Superseded if another process's is there."""
        record = root.workers.get(self.uuid)
        if record is not None and not record.belongs_to(self.incarnation):
            raise Superseded(
                "Worker %s was declared dead while it was cut off or frozen, and another process "
                "(on %s, pid %s) runs with its identity now: this one stops running jobs. Restart "
                "this process once the other one has stopped, or give it an identity of its own."
                % (self.uuid, record.host, record.pid))
        return record

    def _unregister(self, root):
        try:
            record = self._mine(root)
        except Superseded:
            return  # (the record and its jobs are the other process's)
        if record is not None:
            self._record_outcomes(root, record)
            for job in record.claimed.values():
                if (job._p_oid, job.claim_token) in self._dropped and job.status == interfaces.ACTIVE:
                    job.attempts -= 1  # claimed ahead, it never started here: no attempt
            filing.take_back(root, record)
            del root.workers[self.uuid]

    def _ping(self, root):
        record = self._mine(root)
        if record is None:
            log.warning("Worker %s was declared dead while alive; registering again.", self.uuid)
            return self._register(root)
        record.ping.time = utcnow()

    def _reap(self, root):
        for uuid, record in list(root.workers.items()):
            if uuid == self.uuid or record.is_alive(self.settings.death_interval):
                continue
            jobs = filing.take_back(root, record)
            log.warning(
                "Worker %s (%s, pid %s) silent since %s: declared dead; %d job(s) go back to the queue.",
                uuid, record.host, record.pid, record.last_ping, len(jobs),
            )
            del root.workers[uuid]
            self.stats["reaped_jobs"] += len(jobs)

    def _retention_pass(self):
        """Remove one batch of finished jobs past the retention; retire idle inboxes."""
        count = self._in_transaction(remove_old_jobs, self.settings.retention_days)
        self._retention_backlog = count >= RETENTION_BATCH
        if count:
            log.info("Removed %d finished jobs past the retention.", count)
        if not self._retention_backlog:
            self._in_transaction(self._retire_idle_inboxes)
            self._in_transaction(drop_stale_requests, utcnow())
        return count

    def _retire_idle_inboxes(self, root):
        for queue in root.queues.values():
            retire_idle_inboxes(queue, utcnow())

    def remove_old_jobs(self):
        """Remove every finished job past the retention, a batch per transaction."""
        removed = 0
        while not self.stopping.is_set():
            removed += self._retention_pass()
            if not self._retention_backlog:
                break
        return removed
