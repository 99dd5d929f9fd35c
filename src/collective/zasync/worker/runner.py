"""Running one claimed job in a worker thread: its function, its events, its callbacks. Not for add-ons.

The function's ZODB writes, the job's result and its new state are committed
in ONE transaction: if the worker dies before that commit, nothing of the job
happened and it runs again elsewhere; after it, the job is done and is never
run again. How each attempt goes (the gates, conflict retries, outages, the
retry policy): worker/attempt.py. Short jobs of one kind may share that
transaction with the ones before them: worker/grouping.py.
"""

from collective.zasync import interfaces
from collective.zasync.client.transactional import commit
from collective.zasync.core.calls import ObjectRef
from collective.zasync.core.cancelling import forget_request
from collective.zasync.core.cancelling import JobCancelled
from collective.zasync.core.cancelling import raise_if_requested
from collective.zasync.core.failure import Failure
from collective.zasync.core.lifecycle import requeue
from collective.zasync.core.queue import get_queue_root
from collective.zasync.defaults import GIVE_BACK_TRIES
from collective.zasync.defaults import STORE_PAUSE_MAX
from collective.zasync.worker.attempt import Attempts
from collective.zasync.worker.attempt import backoff
from collective.zasync.worker.conflictgate import ConflictGate
from collective.zasync.worker.current import current
from collective.zasync.worker.current import StaleClaim
from collective.zasync.worker.environment import job_environment
from collective.zasync.worker.events import has_subscribers
from collective.zasync.worker.events import JobStarted
from collective.zasync.worker.events import notify_guarded
from collective.zasync.worker.events import outcome_event
from collective.zasync.worker.grouping import Group
from collective.zasync.worker.history import note_job
from collective.zasync.worker.loading import load_arguments
from collective.zasync.worker.loading import load_callable
from collective.zasync.worker.loading import load_object
from collective.zasync.worker.turns import Turns
from transaction.interfaces import TransientError
from ZODB.POSException import ConflictError
from zope.event import notify

import logging
import time
import transaction


log = logging.getLogger("collective.zasync")


class JobRunner:
    """Runs claimed jobs for one worker; one instance per worker thread."""

    def __init__(self, db, worker_uuid, max_retries=5, slot=0, hand_over=None, gate=None, turns=None,
                 done=None):
        self.db = db
        self.worker_uuid = worker_uuid
        self.max_retries = max_retries
        self.slot = slot  # this thread's Progress slot in the worker record
        # hand_over(oid, token, outcome): the dispatcher commits the outcome
        # of a job that wrote nothing (group commit, groupcommit.py); None: off.
        self.hand_over = hand_over
        # The conflict gate of this worker process, shared by its job threads (conflictgate.py).
        self.gate = gate if gate is not None else ConflictGate()
        # Short jobs that keep the CPU busy take turns (turns.py), shared likewise.
        self.turns = turns if turns is not None else Turns()
        # Told when each job it ran is done with: its thread (worker/jobthread.py).
        self.done = done if done is not None else NoThread()
        # Objects its jobs loaded from the storage and stored, in all (the worker's stop line
        # sums them: with several threads each connection reloads what the others changed).
        self.loads = self.stores = 0
        # Groups committed, and the jobs in them (worker/grouping.py; the stop line sums them).
        self.shared_commits = self.jobs_in_shared_commits = 0

    def run(self, job_oid, token, more=None):
        """Run the claimed job ``job_oid`` (claim number ``token``) to its end; then, while
        ``more()`` gives another claimed job (or None) and short jobs take turns, those too,
        in a group when they are of one kind (worker/grouping.py). Each job is reported to
        ``done`` once it is done with."""
        with self.turns.turn():  # (before the connection is opened: see turns.py)
            conn = self.db.open()
            conn.getTransferCounts(True)  # (counted from here: the pooled connection's earlier use is not)
            grouping = more is not None and self.hand_over is not None and self.turns.taken()
            group = Group(self, conn) if grouping else None
            try:
                item, fresh = (job_oid, token), True
                while item is not None:
                    self._run_one(conn, *item, group=group, fresh=fresh)
                    item, fresh = more() if group is not None and group.wants_more() else None, False
                if group is not None:
                    group.end()
                    self._run_again(conn, group)
            finally:
                current.job = None
                transaction.abort()
                loads, stores = conn.getTransferCounts(True)
                self.loads, self.stores = self.loads + loads, self.stores + stores
                conn.close()

    def _run_one(self, conn, job_oid, token, group=None, again=False, fresh=False):
        """Run one job; ``again``: a member of a group whose commit failed, now alone (its
        run counts as a conflict retry: the job says it ran more than once); ``fresh``: the
        connection was opened for it (its view has the claim already)."""
        began = time.monotonic()
        if group is not None:
            group.jobs += 1
            if group.members and not group.fits(job_oid, token):
                group.end()  # (it starts a transaction of its own, and maybe a group)
        try:
            with self.turns.measured():
                self._run(conn, job_oid, token, group, retries=1 if again else 0, fresh=fresh)
        except StaleClaim:
            self._set_aside(group)
            transaction.abort()
            log.info("Job %r was handed to another worker; not running it here.", job_oid)
        except Exception:
            self._set_aside(group)
            transaction.abort()
            log.exception("Worker error around job %r; handing it back.", job_oid)
            self._give_back(conn, job_oid, token)
        waits = group is not None and group.has(job_oid)
        if again:
            self.done.settled(job_oid, token)
        else:
            self.done.finished(job_oid, token, time.monotonic() - began, settled=not waits)
        if group is not None and not waits:
            self._run_again(conn, group)

    def _set_aside(self, group):
        if group is not None and group.members:
            group.set_aside()

    def _run_again(self, conn, group):
        """Members of ``group`` whose commit failed run again, each alone."""
        while group.rerun:
            self._run_one(conn, *group.rerun.pop(0), again=True)

    # -- phases ----------------------------------------------------------------

    def _run(self, conn, job_oid, token, group=None, retries=0, fresh=False):
        joining = group is not None and bool(group.members)  # (it fits: _run_one)
        # Opening the connection brought its view up to date (on RelStorage, a query): a
        # transaction begun now would ask again, and the attempt begins its own anyway.
        job = None if joining else self._load(conn, job_oid, token, begin=not fresh)
        if joining or job.status == interfaces.ACTIVE:
            job = self._main(conn, job_oid, token, group, retries)
        if job is not None and job.status == interfaces.CALLBACKS:
            self._after(conn, job_oid, token)

    def _load(self, conn, job_oid, token, begin=True):
        """Begin a transaction (unless ``begin`` is false: a group's goes on) and return the
        job, if it is still ours."""
        if begin:
            transaction.begin()
        root = get_queue_root(conn, create=False)
        job = root._p_jar.get(job_oid)
        if job.worker_uuid != self.worker_uuid or job.claim_token != token:
            raise StaleClaim(job_oid)
        if job.status not in (interfaces.ACTIVE, interfaces.CALLBACKS):
            raise StaleClaim(job_oid)
        return job

    def _main(self, conn, job_oid, token, group=None, retries=0):
        """Call the job's function; commit its effects with its result."""

        def call(app, job):
            # Asked to stop while it waited for a thread (claimed ahead): it does not start.
            raise_if_requested(get_queue_root(job._p_jar, create=False), job.id, "before it started")
            started = JobStarted(job)
            if has_subscribers(started):  # (raising vetoes the run: the job fails)
                notify(started)
            func = load_callable(app, job)
            context = load_object(app, ObjectRef(job.context_path, job.context_oid, job.context_uid))
            args, kwargs = load_arguments(app, job)
            return func(context, *args, **kwargs)

        return Attempts(self, conn, job_oid, token, call, self._store_result, group=group,
                        retries=retries).run()

    def _after(self, conn, job_oid, token):
        """Fire the job's event if not done yet, run its callbacks, complete it."""
        job = self._load(conn, job_oid, token)
        if not job.events_fired:
            self._fire_event(conn, job_oid, token)
        job = self._load(conn, job_oid, token)
        for callback in job.callbacks_to_run():
            self._attempt(
                conn,
                job_oid,
                token,
                lambda app, job, cb=callback: load_callable(app, cb)(job.result),
                lambda job, result, retries, cb=callback: self._store_callback(cb, result),
                run_as=callback,
            )
        job = self._load(conn, job_oid, token)
        self._complete(job)
        transaction.commit()

    def _fire_event(self, conn, job_oid, token):
        """IJobSuccess/IJobFailure in a transaction of its own (a batch, a timeout).

        A subscriber that keeps failing costs the job its event, never its
        completion: the job is not handed back to run into it again.
        """
        for attempt in range(self.max_retries + 1):
            job = self._load(conn, job_oid, token)
            try:
                with job_environment(conn.root()["Application"], job, strict=False):
                    self._notify(job)
                    commit()
                return
            except ConflictError:
                transaction.abort()
                time.sleep(backoff(attempt))
            except Exception:
                transaction.abort()
                log.exception("A subscriber of job %s's event failed; the job completes without it.", job.id)
                break
        job = self._load(conn, job_oid, token)
        job.events_fired = True
        transaction.commit()

    def _attempt(self, conn, job_oid, token, call, store, run_as=None):
        """Run ``call(app, job)`` and ``store(job, result, retries)`` in one transaction,
        attempt after attempt (worker/attempt.py); return the job."""
        return Attempts(self, conn, job_oid, token, call, store, run_as).run()

    def retries_allowed(self, job):
        """The site's setting stored on the job, else the worker's."""
        return job.max_retries if job.max_retries is not None else self.max_retries

    # -- storing outcomes ------------------------------------------------------

    def _store_result(self, job, result, retries):
        # Claimed ahead of time, a job may have waited: record when it ran.
        began = getattr(current, "began", None)
        job.finish(result, retries)
        job.started = began or job.started
        note_job(job)  # the Undo view names the job and its user
        notify_guarded(outcome_event(job))  # a failing subscriber must not cost the job its result
        job.events_fired = True
        if not job.callbacks_to_run():
            self._complete(job)

    def _store_callback(self, callback, result):
        callback.finish(result)
        callback.complete()

    def _complete(self, job):
        """Mark ``job`` COMPLETED; the dispatcher files it (it is among its claimed jobs)."""
        job.complete()
        # Declared dead meanwhile, this worker's claims were taken back: the
        # job's commit would conflict with that; say so at once instead.
        if get_queue_root(job._p_jar, create=False).workers.get(self.worker_uuid) is None:
            raise StaleClaim(job._p_oid)

    def _store_failure(self, conn, job_oid, token, exc, retries, run_as=None):
        """Record ``exc`` as the job's (or callback's) result, in a new transaction."""
        failure = Failure(exc)
        for attempt in range(self.max_retries + 1):
            job = self._load(conn, job_oid, token)
            target = run_as if run_as is not None else job
            if attempt == 0:
                log.error(
                    "Job %s (%s) failed: %s\n%s",
                    target.id,
                    target.describe(),
                    failure,
                    failure.getTraceback(),
                )
            try:
                if run_as is not None:
                    self._store_callback(run_as, failure)
                else:
                    if isinstance(exc, JobCancelled):  # it stopped for the request: done with it
                        forget_request(get_queue_root(conn, create=False), job.id)
                    with job_environment(conn.root()["Application"], job, strict=False):
                        self._store_result(job, failure, retries)
                        transaction.commit()
                    return job
                transaction.commit()
                return job
            except TransientError:
                transaction.abort()
                time.sleep(backoff(attempt, cap=STORE_PAUSE_MAX))
        raise RuntimeError("Could not store the failure of job %r" % job_oid)

    def _give_back(self, conn, job_oid, token):
        """Hand a job we cannot finish back to its queue (it is not lost)."""
        for attempt in range(GIVE_BACK_TRIES):
            try:
                job = self._load(conn, job_oid, token)
                requeue(get_queue_root(conn, create=False), job)
                transaction.commit()
                log.warning("Job %s handed back to its queue.", job.id)
                return
            except StaleClaim:
                return
            except Exception:
                transaction.abort()
                time.sleep(backoff(attempt, cap=STORE_PAUSE_MAX))
        log.error("Could not hand job %r back; a live worker will after the death interval.", job_oid)

    def _notify(self, job):
        job.events_fired = True
        notify(outcome_event(job))


class NoThread:
    """What a runner reports to without a job thread (a test's): nothing listens."""

    def finished(self, oid, token, seconds, settled):
        """Job ``oid``'s run took ``seconds``; ``settled``: it is done with, else its group's commit waits."""

    def settled(self, oid, token):
        """Job ``oid``, whose group's commit waited, is done with."""
