"""Running one claimed job in a worker thread.

The function's ZODB writes, the job's result and its new state are committed
in ONE transaction: if the worker dies before that commit, nothing of the job
happened and it runs again elsewhere; after it, the job is done and is never
run again. A ConflictError aborts everything and the attempt is run again
after a random, growing pause, a bounded number of times (conflict retries).
An error named in the job's retry_on aborts everything too, and files the
job again for a later attempt (retrying.py): the thread does not wait.
"""

from collective.zasync import interfaces
from collective.zasync.cancelling import forget_request
from collective.zasync.cancelling import JobCancelled
from collective.zasync.cancelling import raise_if_requested
from collective.zasync.callables import check_picklable
from collective.zasync.callables import load_arguments
from collective.zasync.callables import load_callable
from collective.zasync.callables import load_object
from collective.zasync.events import JobFailure
from collective.zasync.events import JobRetrying
from collective.zasync.events import JobStarted
from collective.zasync.events import JobSuccess
from collective.zasync.failure import Failure
from collective.zasync.callables import ObjectRef
from collective.zasync.completions import outcome_of
from collective.zasync.completions import state_of
from collective.zasync.gate import ConflictGate
from collective.zasync.gate import wait_alone
from collective.zasync.history import note_job
from collective.zasync.job import utcnow
from collective.zasync.queue import requeue
from collective.zasync.queue import get_queue_root
from collective.zasync.environment import job_environment
from collective.zasync.retrying import pause
from collective.zasync.retrying import wants_another_attempt
from collective.zasync.transactional import commit
from datetime import timedelta
from transaction.interfaces import TransientError
from ZODB.POSException import ConflictError
from ZODB.POSException import StorageError
from zope.component import getSiteManager
from zope.component.event import objectEventNotify
from zope.event import notify
from zope.interface import providedBy

import logging
import random
import threading
import time
import transaction


log = logging.getLogger("collective.zasync")

OUTAGE_LIMIT = 600  # seconds a job waits for an unreachable database
REFILE_TRIES = 20  # commits tried to file a job again for its next attempt (retry_on)

# The job running in this thread, for set_progress() and friends.
current = threading.local()


def backoff(attempt, base=0.05, cap=5.0):
    """Seconds to wait before retry number ``attempt``: random, growing."""
    return random.uniform(0, min(cap, base * 2**attempt))


def is_outage(exc, db):
    """True if ``exc`` says the database is unreachable: not the job's fault, it runs again
    once the database is back (within OUTAGE_LIMIT).

    That is a ZODB storage error that is transient (ZEO's ClientDisconnected, RelStorage's
    StorageDisconnectedDuringCommit), or what the storage's database driver raises when it
    loses its server (RelStorage on PostgreSQL: psycopg2's OperationalError while the
    server restarts). Any other TransientError the job's own code raised is its error.
    """
    if isinstance(exc, TransientError) and isinstance(exc, StorageError):
        return True
    return isinstance(exc, disconnection_errors(db))


def abort_quietly():
    """Abort the thread's transaction; with the database gone, that can fail too."""
    try:
        transaction.abort()
    except Exception as exc:
        log.debug("Abort failed: %r", exc)


def disconnection_errors(db):
    """The exception classes with which the storage of ``db`` says it lost its server."""
    adapter = getattr(db.storage, "_adapter", None)  # RelStorage
    driver = getattr(getattr(adapter, "connmanager", None), "driver", None)
    return tuple(getattr(driver, "disconnected_exceptions", ()))


def kind_of(job):
    """What makes jobs alike for the conflict gate: their function, or their method's name."""
    return job.func_name or job.func_attr


class StaleClaim(Exception):
    """The job was handed to another worker meanwhile; drop it."""


class JobRunner:
    """Runs claimed jobs for one worker; one instance per worker thread."""

    def __init__(self, db, worker_uuid, max_retries=5, slot=0, hand_over=None, gate=None):
        self.db = db
        self.worker_uuid = worker_uuid
        self.max_retries = max_retries
        self.slot = slot  # this thread's Progress slot in the worker record
        # hand_over(oid, token, outcome): the dispatcher commits the outcome
        # of a job that wrote nothing (group commit, completions.py); None: off.
        self.hand_over = hand_over
        # The conflict gate of this worker process, shared by its job threads (gate.py).
        self.gate = gate if gate is not None else ConflictGate()

    def run(self, job_oid, token):
        """Run the claimed job ``job_oid`` (claim number ``token``) to its end."""
        conn = self.db.open()
        try:
            self._run(conn, job_oid, token)
        except StaleClaim:
            transaction.abort()
            log.info("Job %r was handed to another worker; not running it here.", job_oid)
        except Exception:
            transaction.abort()
            log.exception("Worker error around job %r; handing it back.", job_oid)
            self._give_back(conn, job_oid, token)
        finally:
            current.job = None
            transaction.abort()
            conn.close()

    # -- phases ----------------------------------------------------------------

    def _run(self, conn, job_oid, token):
        job = self._load(conn, job_oid, token)
        if job.status == interfaces.ACTIVE:
            job = self._main(conn, job_oid, token)
        if job is not None and job.status == interfaces.CALLBACKS:
            self._after(conn, job_oid, token)

    def _load(self, conn, job_oid, token):
        """Begin a transaction and return the job, if it is still ours."""
        transaction.begin()
        root = get_queue_root(conn, create=False)
        job = root._p_jar.get(job_oid)
        if job.worker_uuid != self.worker_uuid or job.claim_token != token:
            raise StaleClaim(job_oid)
        if job.status not in (interfaces.ACTIVE, interfaces.CALLBACKS):
            raise StaleClaim(job_oid)
        return job

    def _main(self, conn, job_oid, token):
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

        return self._attempt(conn, job_oid, token, call, self._store_result)

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

    # -- one attempt loop ------------------------------------------------------

    def _attempt(self, conn, job_oid, token, call, store, run_as=None):
        """Run ``call(app, job)`` and ``store(job, result, retries)`` in one
        transaction; retry on ConflictError; store a Failure on any error."""
        retries = 0
        outage = None
        last_seconds = 0.0
        job = None
        # Out of conflict retries once, it was claimed to run alone in the cluster, maybe
        # with others like it: each attempt runs alone in this process too (gate.py).
        # (The job's connection: with the queue in a database of its own, that is not ``conn``.)
        first = get_queue_root(conn, create=False)._p_jar.get(job_oid)
        in_cluster_gate = run_as is None and first.alone
        kind = kind_of(first) if run_as is None else None  # (callbacks are not serialized)
        while True:
            pause = disconnected = None
            alone = in_cluster_gate or self.gate.should_run_alone(retries, last_seconds)
            if alone and not in_cluster_gate:  # (only after conflicts: job is the one loaded before)
                log.info("Job %s: %d conflicts; its next attempt runs alone in this worker.",
                         job.id, retries)
            # Begin (in _load) inside the gate, so that an attempt alone sees
            # every commit of the attempts it waited for (and one after another
            # of its kind, every commit of the one before).
            with self.gate.one_at_a_time(kind), self.gate.alone() if alone else self.gate.shared():
                began = time.monotonic()
                job = self._load(conn, job_oid, token)
                before = state_of(job) if self.hand_over is not None and run_as is None else None
                subject = run_as if run_as is not None else job
                current.job = job
                current.runner = self
                current.token = token  # checkpoint() commits only while the claim is ours
                current.began = utcnow()
                try:
                    with job_environment(conn.root()["Application"], subject) as app:
                        result = call(app, job)
                        check_picklable(result, "the result of %s" % subject.describe())
                        store(job, result, retries)
                        if not self._handed_over(job_oid, token, job, before):
                            commit()
                    return job
                except ConflictError as exc:
                    transaction.abort()
                    retries += 1
                    last_seconds = time.monotonic() - began
                    self.gate.conflicted(kind, last_seconds)
                    if retries > self.retries_allowed(job):
                        log.warning("Job %s: ConflictError after %d retries.", job.id, retries - 1)
                        if run_as is None and not job.alone:  # it conflicts with other workers' jobs
                            return self._wait_alone(conn, job_oid, token)
                        return self._store_failure(conn, job_oid, token, exc, retries - 1, run_as)
                    pause = backoff(retries)
                except StaleClaim:
                    raise
                except BaseException as exc:  # SystemExit, KeyboardInterrupt too
                    abort_quietly()
                    if is_outage(exc, conn.db()):  # the database is unreachable: not the job's fault
                        disconnected = exc
                    elif run_as is None and wants_another_attempt(job, exc):
                        return self._try_again(conn, job_oid, token, exc)
                    else:
                        return self._store_failure(conn, job_oid, token, exc, retries, run_as)
                finally:
                    current.job = None
            # Wait outside the gate: the other threads go on meanwhile.
            if pause is not None:
                time.sleep(pause)
            if disconnected is not None:
                outage = self._wait_for_storage(outage, disconnected)

    def _handed_over(self, job_oid, token, job, before):
        """Group commit: hand the outcome of a job that wrote nothing to the dispatcher."""
        outcome = outcome_of(job, before) if before is not None else None
        if outcome is None:
            return False
        transaction.abort()
        self.hand_over(job_oid, token, outcome)
        return True

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
        event = self._event(job)
        if has_subscribers(event):
            # A failing subscriber must not cost the job its result.
            savepoint = transaction.savepoint()
            try:
                notify(event)
            except Exception:
                savepoint.rollback()
                log.exception("A subscriber of job %s's event failed.", job.id)
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
                time.sleep(backoff(attempt, cap=10.0))
        raise RuntimeError("Could not store the failure of job %r" % job_oid)

    def _try_again(self, conn, job_oid, token, exc):
        """A retry_on error: file the job again, due at its next try, in a new transaction."""
        failure = Failure(exc)

        def refile(root, job, attempt):
            next_try = utcnow() + timedelta(seconds=pause(job, job.failed_attempts + 1))
            if attempt == 0:
                log.warning("Job %s (%s): attempt %d of %d failed: %s; next try at %s.", job.id,
                            job.describe(), job.attempts - job.earlier_attempts, job.max_attempts,
                            failure, next_try)
            job.try_again_at(next_try, failure)
            requeue(root, job)
            with job_environment(conn.root()["Application"], job, strict=False):
                self._notify_retrying(job, failure, next_try)

        return self._refile(conn, job_oid, token, refile, "for its next attempt")

    def _wait_alone(self, conn, job_oid, token):
        """Out of conflict retries: the job runs once more, alone in the cluster (gate.py)."""
        job = self._refile(conn, job_oid, token,
                           lambda root, job, attempt: wait_alone(root, job, utcnow()), "to run alone")
        log.warning("Job %s runs again once the jobs running in the cluster have finished.", job.id)
        return job

    def _refile(self, conn, job_oid, token, refile, purpose):
        """Run ``refile(root, job, attempt)`` and commit, in a transaction of its own.

        It writes the queue's waiting tree and the worker's claims, which
        dispatchers write all the time: conflicts are likely and short.
        (Given up on, the job is handed back: that start still counts.)
        """
        for attempt in range(REFILE_TRIES):
            job = self._load(conn, job_oid, token)
            try:
                refile(get_queue_root(conn, create=False), job, attempt)
                transaction.commit()
                return job
            except TransientError:
                transaction.abort()
                time.sleep(backoff(attempt, base=0.01, cap=1.0))
        raise RuntimeError("Could not file job %r %s" % (job_oid, purpose))

    def _notify_retrying(self, job, failure, next_try):
        """IJobRetrying; a failing subscriber does not stop the next attempt."""
        event = JobRetrying(failure, job, next_try)
        if not has_subscribers(event):
            return
        savepoint = transaction.savepoint()
        try:
            notify(event)
        except Exception:
            savepoint.rollback()
            log.exception("A subscriber of job %s's IJobRetrying event failed.", job.id)

    def _wait_for_storage(self, outage, exc):
        """Pause while the database is unreachable; give up after OUTAGE_LIMIT."""
        now = time.monotonic()
        if outage is None:
            log.warning("Database unreachable (%s); the job will run again once it is back.", exc)
            outage = now
        elif now - outage > OUTAGE_LIMIT:
            raise RuntimeError("Database unreachable for %d s: %s" % (OUTAGE_LIMIT, exc)) from exc
        time.sleep(1.0)
        return outage

    def _give_back(self, conn, job_oid, token):
        """Hand a job we cannot finish back to its queue (it is not lost)."""
        for attempt in range(10):
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
                time.sleep(backoff(attempt, cap=10.0))
        log.error("Could not hand job %r back; a live worker will after the death interval.", job_oid)

    def _event(self, job):
        return JobFailure(job.result, job) if job.failed else JobSuccess(job.result, job)

    def _notify(self, job):
        job.events_fired = True
        notify(self._event(job))


def has_subscribers(event):
    """True if a handler would see ``event`` (beyond the generic object-event relay)."""
    # A savepoint costs a temporary file per job: only take one when needed.
    # zope.component's objectEventNotify is subscribed to every IObjectEvent
    # under Zope; it only relays to (object, event) subscribers, asked next.
    adapters = getSiteManager().adapters
    provided = providedBy(event)
    direct = [h for h in adapters.subscriptions([provided], None) if h is not objectEventNotify]
    return bool(direct or adapters.subscriptions([providedBy(event.object), provided], None))
