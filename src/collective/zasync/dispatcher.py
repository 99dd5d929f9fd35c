"""The dispatcher: one per worker process; files, claims and hands out jobs.

Its loop, in one thread:

1. wait until woken (a commit touched a queue's inbox, seen through the
   database's invalidations; a job of ours finished) or the poll interval ran
   out;
2. in one short transaction per pass: file new jobs from each queue's inbox
   into the pending BTree, file finished jobs, advance batches, and claim as
   many due jobs as there are idle threads;
3. hand the claimed jobs to its threads (runner.py runs them);
4. now and then: ping, declare silent workers dead (their jobs go back to the
   queue), and remove finished jobs older than the retention.

A ConflictError in its own transactions only means another worker got there
first: abort, wait a random moment, try again.
"""

from collective.zasync import batches
from collective.zasync import interfaces
from collective.zasync.failure import Failure
from collective.zasync.job import utcnow
from collective.zasync.invalidations import unwatch_invalidations
from collective.zasync.invalidations import watch_invalidations
from collective.zasync.queue import due_key
from collective.zasync.queue import due_time
from collective.zasync.queue import file_finished
from collective.zasync.queue import file_pending
from collective.zasync.queue import get_queue_root
from collective.zasync.queue import remove_old_jobs
from collective.zasync.queue import RETENTION_BATCH
from collective.zasync.queue import requeue
from collective.zasync.queue import timed_out
from collective.zasync.runner import backoff
from collective.zasync.runner import JobRunner
from collective.zasync.worker import Settings
from collective.zasync.worker import WorkerRecord
from collections import Counter
from datetime import datetime
from datetime import timezone
from ZODB.POSException import ConflictError

import logging
import queue as stdqueue
import random
import threading
import time
import transaction


log = logging.getLogger("collective.zasync")

PREFETCH = 3  # short jobs: claim this many per thread ahead of time
SHORT_JOB = 0.05  # seconds: jobs faster than this on average are "short"
CLAIM_SCAN_LIMIT = 200  # pending entries looked at per pass, at most
RETENTION_EVERY = 300.0  # seconds between retention runs
MAX_STARTS = 10  # a job whose worker died this many times while running it fails
RUNNABLE = (interfaces.ACTIVE, interfaces.CALLBACKS)  # states of a claimed job


class Dispatcher:
    """Runs jobs of every queue in the database of ``db``, as worker ``uuid``."""

    def __init__(self, db, uuid, settings=None):
        self.db = db
        self.uuid = uuid
        self.settings = settings or Settings()
        self.wakeup = threading.Event()
        self.stopping = threading.Event()
        self.stats = Counter()  # claimed, claim_conflicts, reaped, ...
        self._work = stdqueue.Queue()
        self._busy = 0  # claimed and not finished: running or waiting in _work
        self._held = {}  # job oid -> claim token, for every job counted in _busy
        self._running_since = {}  # job oid -> time.time() its thread began it
        self._lock = threading.Lock()
        self._watched = frozenset()
        self._threads = []
        self._next_due = None
        self._healthy_since = None
        self._failing = set()  # the steps of the loop that failed last time
        self._retention_backlog = False
        self._passes = 0
        self._average_run = None  # seconds, moving average of recent jobs

    # -- life cycle ------------------------------------------------------------

    def start(self):
        """Register this worker, start its threads and its loop."""
        self.tm = transaction.TransactionManager()
        self.conn = self.db.open(transaction_manager=self.tm)
        self._in_transaction(self._register)
        if not watch_invalidations(self.db, self._on_invalidation):
            log.warning(
                "Worker %s: this storage does not push invalidations; new jobs are "
                "found by polling every %g s (poll-interval).", self.uuid, self.settings.poll_interval,
            )
        for number in range(self.settings.threads):
            thread = threading.Thread(
                target=self._run_jobs, args=(number,), name="zasync-job-%d" % number, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._loop_thread = threading.Thread(
            target=self._loop, name="zasync-dispatcher", daemon=True
        )
        self._loop_thread.start()
        log.info(
            "Worker %s started with %d threads.", self.uuid, self.settings.threads
        )

    def stop(self, timeout=None):
        """Stop: running jobs get ``timeout`` seconds, the rest go back to the queue."""
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
        unwatch_invalidations(self.db, self._on_invalidation)
        # Jobs still running past the timeout are handed back too; the
        # bumped claim token makes their late commit fail, so their ZODB
        # effects happen once, where they run again.
        self._in_transaction(self._unregister)
        self.conn.close()
        log.info("Worker %s stopped (%s).", self.uuid, dict(self.stats))

    def _drop_waiting(self):
        while True:
            try:
                item = self._work.get_nowait()
            except stdqueue.Empty:
                return
            self._release(*item)

    def _release(self, oid, token):
        """Forget a claimed job: it finished, or it will not run here."""
        with self._lock:
            self._busy -= 1
            if self._held.get(oid) == token:
                del self._held[oid]

    @property
    def busy(self):
        """How many jobs this worker holds: running, or claimed and waiting for a thread."""
        return self._busy

    # -- the loop ----------------------------------------------------------------

    def _loop(self):
        next_ping = next_reap = time.monotonic()
        next_retention = time.monotonic() + 5.0
        while not self.stopping.is_set():
            self.wakeup.clear()
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
                if self._step("reap", self._in_transaction, self._reap):
                    next_reap = now + self.settings.death_interval / 4
            if now >= next_retention and self._step("retention", self._retention_pass):
                # One batch per pass, so that pings go on between batches.
                next_retention = now + (0.0 if self._retention_backlog else RETENTION_EVERY)
            self.wakeup.wait(1.0 if self._failing else self._sleep_time())

    def _step(self, name, func, *args):
        """Run one step of the loop; log its failure (once until it works again) and go on."""
        try:
            func(*args)
        except Exception:
            self.tm.abort()
            if name not in self._failing:
                log.exception("Worker %s: %s failed; retrying every second.", self.uuid, name)
            self._failing.add(name)
            return False
        if name in self._failing:
            self._failing.discard(name)
            log.info("Worker %s: %s works again.", self.uuid, name)
        return True

    def _sleep_time(self):
        timeout = self.settings.poll_interval
        if self._next_due is not None:
            timeout = min(timeout, max(0.0, self._next_due - time.time()))
        if self._retention_backlog:
            timeout = 0.0
        return min(timeout, self.settings.ping_interval)

    def _may_reap(self, now):
        # After an outage (ZEO restart, network) every worker's ping is old:
        # give the others a full death interval to ping again before judging.
        return (
            self._healthy_since is not None
            and now - self._healthy_since >= self.settings.death_interval
        )

    def _on_invalidation(self, oids):
        if not self._watched.isdisjoint(oids):
            self.wakeup.set()

    def _run_jobs(self, slot):
        runner = JobRunner(self.db, self.uuid, self.settings.max_retries, slot)
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
                # Nothing may end this thread while capacity() counts it; a
                # job left claimed is given back by the next pass (_release_orphans).
                log.exception("Worker %s: job %r ended its thread's run abnormally.", self.uuid, oid)
            finally:
                self._running_since.pop(oid, None)
                self._release(oid, token)
                took = time.monotonic() - started
                with self._lock:
                    average = self._average_run
                    self._average_run = took if average is None else 0.8 * average + 0.2 * took
                # Claim more once the jobs claimed ahead are (almost) used up.
                if self._busy <= self.settings.threads:
                    self.wakeup.set()

    def _in_transaction(self, func, *args):
        """Run ``func(root, *args)`` in a transaction; retry on ConflictError."""
        for attempt in range(20):
            self.tm.begin()
            try:
                result = func(get_queue_root(self.conn), *args)
                self.tm.commit()
                return result
            except ConflictError:
                self.tm.abort()
                self.stats["conflicts"] += 1
                # Another worker got there first; its commit is already
                # visible, so try again almost at once (a long pause here
                # would let one worker take all the jobs).
                time.sleep(backoff(attempt, base=0.002, cap=0.1))
            except BaseException:
                self.tm.abort()
                raise
        raise RuntimeError("Worker %s: gave up after 20 conflicts." % self.uuid)

    # -- one pass: file, claim, hand out --------------------------------------

    def capacity(self):
        """How many claimed jobs this worker holds at most (running or waiting).

        Short jobs are claimed a few at a time ahead of the threads, so that
        one claim commit serves several jobs; long jobs are claimed only for
        idle threads, so that they are not kept from idle workers elsewhere.
        """
        threads = self.settings.threads
        if self._average_run is not None and self._average_run < SHORT_JOB:
            return threads * (1 + PREFETCH)
        return threads

    def dispatch(self):
        """File new and finished jobs, claim due ones for idle threads."""
        free = 0 if self.stopping.is_set() else self.capacity() - self.busy
        claimed = self._in_transaction(self._file_and_claim, free)
        with self._lock:
            self._busy += len(claimed)
            self._held.update(claimed)
        for item in claimed:
            self._work.put(item)
        self.stats["claimed"] += len(claimed)
        return len(claimed)

    def _file_and_claim(self, root, free):
        watched = set()
        self._next_due = None
        self._passes += 1
        me = root.workers.get(self.uuid)
        if me is None:  # declared dead by another worker while we were cut off
            log.warning("Worker %s was declared dead while alive; registering again.", self.uuid)
            me = self._register(root)
        self._release_orphans(root, me)
        if self.settings.time_limit:
            self._fail_overdue(root, me)
        # Each worker files the jobs its own threads finished: no two
        # workers ever file the same job (which would conflict).
        self._file_done(root, me.done.take())
        queues = list(root.queues.values())
        for queue in queues:
            watched.update((queue.inbox._p_oid, queue.done._p_oid, queue.pending_count._p_oid))
            self._file_inbox(queue)
            self._file_done(root, queue.done.take())  # orphans of dead workers
        self._watched = frozenset(oid for oid in watched if oid is not None)
        return self._claim(root, queues, free) if free > 0 else []

    def _release_orphans(self, root, me):
        """Give back jobs recorded as ours that no thread of this process holds.

        A thread that gave up on a job (the database unreachable for too
        long, an error around the job) leaves it claimed; without this it
        would stay active until this worker restarts.
        """
        with self._lock:
            held = dict(self._held)
        for job in list(me.active):
            if held.get(job._p_oid) != job.claim_token and job.status in RUNNABLE:
                log.warning("Job %s was claimed here but no thread runs it; it goes back to the queue.", job.id)
                requeue(root, job)
    def _file_inbox(self, queue):
        for job in queue.inbox.take():
            queue.jobs[job.id] = job
            if job.unique_key is not None:
                queue.unique[job.unique_key] = job
            if job.recurrence is not None and job.recurrence.id not in queue.recurring:
                queue.recurring[job.recurrence.id] = job.recurrence
            if job.batch_kind:
                batches.start_batch(queue, job)
            else:
                file_pending(queue, job)

    def _file_done(self, root, jobs):
        for job in jobs:
            if job.status != interfaces.COMPLETED:
                continue  # retried from the control panel meanwhile
            queue = root.queues[job.queue_name]
            file_finished(queue, job)
            if job.unique_key is not None and queue.unique.get(job.unique_key) is job:
                del queue.unique[job.unique_key]
            if job.parent is not None and job.parent.batch_kind:
                batches.advance_batch(queue, job)
            if job.recurrence is not None:
                batches.schedule_next_run(queue, job)

    def _claim(self, root, queues, free):
        """Claim up to ``free`` due jobs, taking from the queues in turn.

        Each queue offers its due jobs oldest first; the queues take turns
        (starting with a different one each pass), so that a long backlog in
        one queue does not keep the others' jobs waiting.
        """
        now = utcnow()
        due = due_key(now.timestamp())
        running = Counter(
            name
            for worker in root.workers.values()
            for job in worker.active
            for name in job.quota_names
        )
        me = root.workers[self.uuid]
        start = self._passes % len(queues)
        offers = [
            self._claimable(queue, due, free, len(root.workers), running)
            for queue in queues[start:] + queues[:start]
        ]
        claimed = []
        while offers and len(claimed) < free:
            for offer in list(offers):
                job = next(offer, None)
                if job is None:
                    offers.remove(offer)
                    continue
                self._take(job, now, me)
                running.update(job.quota_names)
                claimed.append((job._p_oid, job.claim_token))
                if len(claimed) >= free:
                    break
        for queue in queues:
            upcoming = queue.pending_jobs.keys(min=due)
            if upcoming:
                when = due_time(next(iter(upcoming)))
                self._next_due = when if self._next_due is None else min(when, self._next_due)
        return claimed

    def _claimable(self, queue, due, wanted, workers, running):
        """Due jobs of ``queue`` that may start now, taken out of pending_jobs."""
        for key, job in self._candidates(queue, due, wanted, workers):
            unknown = [name for name in job.quota_names if name not in queue.quotas]
            if not unknown and any(running[name] >= queue.quotas[name] for name in job.quota_names):
                continue
            del queue.pending_jobs[key]
            queue.pending_count.change(-1)
            if unknown:
                # Deleted since the job was queued: this job fails, the queue goes on.
                self._fail_at_claim(job, LookupError(
                    "Queue %r has no quota %s any more; create it again (queue.quotas[%r] = "
                    "size) and retry the job." % (queue.name, ", ".join(map(repr, unknown)), unknown[0])
                ))
            yield job

    def _take(self, job, now, me):
        """Make ``job`` ours: its function (or its events and callbacks) run in one of our threads."""
        if job.status == interfaces.PENDING and timed_out(job, now):
            self._fail_at_claim(job, TimeoutError(
                "Job %s could not start before %s." % (job.id, (job.begin_after or job.queued) + job.begin_by)
            ))
        elif job.status == interfaces.PENDING and job.attempts >= MAX_STARTS:
            self._fail_at_claim(job, RuntimeError(
                "Job %s was started %d times and never finished: its worker died or was "
                "stopped while running it each time. Retry it once the cause is fixed."
                % (job.id, job.attempts)
            ))
        if job.status == interfaces.PENDING:
            job.status = interfaces.ACTIVE
            job.attempts += 1
            job.started = now
        else:  # CALLBACKS: its outcome is stored; events and callbacks remain
            job.callback_claims += 1
            if job.callback_claims > MAX_STARTS:
                self._give_up_callbacks(job)
        job.worker_uuid = self.uuid
        job.claim_token += 1
        me.active.append(job)

    def _give_up_callbacks(self, job):
        """Its thread died in its events or callbacks each time: complete it without them."""
        log.error("Job %s: its events and callbacks were started %d times and never finished; "
                  "the job completes without them.", job.id, job.callback_claims - 1)
        job.events_fired = True
        for callback in job.callbacks_to_run():
            callback._result = Failure(RuntimeError(
                "Not run: the callbacks of job %s were started %d times and never finished."
                % (job.id, job.callback_claims - 1)))
            callback.status = interfaces.COMPLETED

    def _fail_at_claim(self, job, exc):
        """Store ``exc`` as the job's failure; a thread fires its events and callbacks."""
        job._result = Failure(exc)
        job.ended = utcnow()
        job.status = interfaces.CALLBACKS
        log.error("Job %s (%s) failed: %s", job.id, job.describe(), job._result)

    def _fail_overdue(self, root, me):
        """Fail our jobs that have run longer than the time limit.

        A thread cannot be stopped: it runs on until the function returns,
        but the bumped claim token makes its commit fail, so none of its
        work is kept. Events and callbacks run as for any failure. The time
        counts from when a thread began the job, not from its claim.
        """
        limit = self.settings.time_limit
        now = time.time()
        for job in list(me.active):
            began = self._running_since.get(job._p_oid)
            if job.status != interfaces.ACTIVE or began is None or now - began <= limit:
                continue
            job.started = datetime.fromtimestamp(began, timezone.utc)
            self._fail_at_claim(job, TimeoutError(
                "Job %s ran longer than the time limit of %g s; its work was discarded." % (job.id, limit)
            ))
            requeue(root, job)

    def _candidates(self, queue, due, wanted, workers):
        """Due (key, job) pairs to claim from, oldest first.

        With several workers, each takes a random selection of the oldest
        due jobs, so that they do not all fight over the same first keys.
        """
        window = []
        for key, job in queue.pending_jobs.items(max=due):
            window.append((key, job))
            if len(window) >= CLAIM_SCAN_LIMIT or len(window) >= wanted * workers * 2:
                break
        if workers > 1 and len(window) > wanted:
            chosen = sorted(random.sample(range(len(window)), wanted))
            rest = [i for i in range(len(window)) if i not in set(chosen)]
            window = [window[i] for i in chosen + rest]
        return window

    # -- pings, dead workers, retention -----------------------------------------

    def _register(self, root):
        previous = root.workers.get(self.uuid)
        if previous is not None:
            # This worker restarted: what it had claimed was interrupted.
            for job in list(previous.active):
                requeue(root, job)
            # ... and what it finished (committed) but had not filed yet.
            self._file_done(root, previous.done.take())
        record = root.workers[self.uuid] = WorkerRecord(self.uuid, self.settings.threads)
        return record

    def _unregister(self, root):
        record = root.workers.get(self.uuid)
        if record is not None:
            for job in list(record.active):
                requeue(root, job)
            self._file_done(root, record.done.take())
            del root.workers[self.uuid]

    def _ping(self, root):
        record = root.workers.get(self.uuid)
        if record is None:
            log.warning("Worker %s was declared dead while alive; registering again.", self.uuid)
            return self._register(root)
        record.ping.time = utcnow()

    def _reap(self, root):
        for uuid, record in list(root.workers.items()):
            if uuid == self.uuid or record.is_alive(self.settings.death_interval):
                continue
            jobs = list(record.active)
            log.warning(
                "Worker %s (%s, pid %s) silent since %s: declared dead; %d job(s) go back to the queue.",
                uuid, record.host, record.pid, record.last_ping, len(jobs),
            )
            for job in jobs:
                requeue(root, job)
            for job in record.done.take():  # finished, not filed yet
                root.queues[job.queue_name].done.append(job)
            del root.workers[uuid]
            self.stats["reaped_jobs"] += len(jobs)

    def _retention_pass(self):
        """Remove one batch of finished jobs past the retention."""
        count = self._in_transaction(remove_old_jobs, self.settings.retention_days)
        self._retention_backlog = count >= RETENTION_BATCH
        if count:
            log.info("Removed %d finished jobs past the retention.", count)
        return count

    def remove_old_jobs(self):
        """Remove every finished job past the retention, a batch per transaction."""
        removed = 0
        while not self.stopping.is_set():
            removed += self._retention_pass()
            if not self._retention_backlog:
                break
        return removed
