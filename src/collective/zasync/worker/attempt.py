"""One job's attempts, until one commits or the job ends: a short pipeline of named steps.
Not for add-ons.

Each attempt goes through, in order:

1. the process gate (worker/conflictgate.py): shared with the other threads' attempts, or
   alone after conflicts (``gates``);
2. the per-kind lock: jobs of one function one at a time in this process while they
   conflict lately (``gates``);
3. the group-commit snapshot: the job's state before its function runs, so that a job
   that wrote nothing hands its outcome to its dispatcher (``once``, worker/groupcommit.py);
   or the job runs in its thread's group, after the members whose commit waits (``once``,
   worker/grouping.py): its failure, a conflict included, ends the group, and it runs again
   alone;
4. the thread-local: what the running job calls finds it (``once``, worker/current.py);
5. conflict retries, a bounded number, then the cluster gate: the job runs once more
   alone in the cluster (``after_conflict``, core/alonegate.py);
6. storage outages: the attempt waits for the database and runs again, bounded
   (``after_error``, ``wait``);
7. the retry policy: an error of the job's ``retry_on`` files it again for a later
   attempt, any other error fails it (``after_error``, core/retrying.py).

Waits (the pause after a conflict, an outage) happen outside the gates: the other
threads go on meanwhile.
"""

from collective.zasync.client.transactional import commit
from collective.zasync.core.alonegate import wait_alone
from collective.zasync.core.calls import check_picklable
from collective.zasync.core.failure import Failure
from collective.zasync.core.job import kind_of
from collective.zasync.core.job import utcnow
from collective.zasync.core.lifecycle import requeue
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.retrying import pause
from collective.zasync.core.retrying import wants_another_attempt
from collective.zasync.defaults import CONFLICT_PAUSE
from collective.zasync.defaults import CONFLICT_PAUSE_MAX
from collective.zasync.defaults import OUTAGE_LIMIT
from collective.zasync.defaults import OUTAGE_POLL
from collective.zasync.defaults import REFILE_PAUSE
from collective.zasync.defaults import REFILE_PAUSE_MAX
from collective.zasync.defaults import REFILE_TRIES
from collective.zasync.worker.current import running
from collective.zasync.worker.current import StaleClaim
from collective.zasync.worker.environment import job_environment
from collective.zasync.worker.events import JobRetrying
from collective.zasync.worker.events import notify_guarded
from collective.zasync.worker.groupcommit import outcome_of
from collective.zasync.worker.groupcommit import snapshot
from datetime import timedelta
from transaction.interfaces import TransientError
from ZODB.POSException import ConflictError
from ZODB.POSException import StorageError

import contextlib
import logging
import random
import time
import transaction


log = logging.getLogger("collective.zasync")

AGAIN = object()  # an attempt's outcome: another attempt follows (after ``wait``)


def backoff(attempt, base=CONFLICT_PAUSE, cap=CONFLICT_PAUSE_MAX):
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


def disconnection_errors(db):
    """The exception classes with which the storage of ``db`` says it lost its server."""
    adapter = getattr(db.storage, "_adapter", None)  # RelStorage
    driver = getattr(getattr(adapter, "connmanager", None), "driver", None)
    return tuple(getattr(driver, "disconnected_exceptions", ()))


def abort_quietly():
    """Abort the thread's transaction; with the database gone, that can fail too."""
    try:
        transaction.abort()
    except Exception as exc:
        log.debug("Abort failed: %r", exc)


class Attempts:
    """Run ``call(app, job)`` and ``store(job, result, retries)`` in one transaction, attempt
    after attempt, for the claimed job ``job_oid`` of ``runner`` (or its callback ``run_as``)."""

    def __init__(self, runner, conn, job_oid, token, call, store, run_as=None, group=None, retries=0):
        self.runner, self.conn, self.job_oid, self.token = runner, conn, job_oid, token
        self.call, self.store, self.run_as = call, store, run_as
        self.group = group if run_as is None else None  # the thread's group (worker/grouping.py)
        self.retries = retries  # conflict retries so far (a run again after its group's commit failed: 1)
        self.last_seconds = 0.0  # how long the last attempt took
        self.pause = None  # seconds to wait before the next attempt (a conflict)
        self.disconnected = None  # the error of an outage to wait out
        self.outage = None  # since when (monotonic) the database is unreachable
        # Out of conflict retries once, it was claimed to run alone in the cluster, maybe
        # with others like it: each attempt runs alone in this process too (step 1).
        # (The job's connection: with the queue in a database of its own, that is not ``conn``.)
        first = get_queue_root(conn, create=False)._p_jar.get(job_oid)
        self.in_cluster_gate = run_as is None and first.alone
        self.kind = kind_of(first) if run_as is None else None  # (callbacks are not serialized)

    def run(self):
        """Attempt until one commits or the job ends; return the job."""
        while True:
            with self.gates():
                outcome = self.once()
            if outcome is not AGAIN:
                return outcome
            self.wait()

    # -- steps 1 and 2: the gates ------------------------------------------------------

    @contextlib.contextmanager
    def gates(self):
        """The per-kind lock, then the process gate: shared, or alone after conflicts.

        The attempt begins inside them, so that one alone sees every commit of the
        attempts it waited for (and one after another of its kind, the one before's).
        """
        gate = self.runner.gate
        alone = self.in_cluster_gate or gate.should_run_alone(self.retries, self.last_seconds)
        if alone and not self.in_cluster_gate:  # (only after conflicts: a job was loaded)
            log.info("Job %s: %d conflicts; its next attempt runs alone in this worker.",
                     self.job.id, self.retries)
        with gate.one_at_a_time(self.kind), gate.alone() if alone else gate.shared():
            yield

    # -- steps 3 and 4: the call ---------------------------------------------------------

    def once(self):
        """One attempt: the job, or AGAIN."""
        self.began = time.monotonic()
        group = self.group
        joining = group is not None and bool(group.members)  # (runner._run_one: it fits)
        job = self.job = self.runner._load(self.conn, self.job_oid, self.token, begin=not joining)
        subject = self.run_as if self.run_as is not None else job
        grouped = self.runner.hand_over is not None and self.run_as is None and not joining
        before = snapshot(job) if grouped else None
        with running(job, self.runner, self.token):
            try:
                with job_environment(self.conn.root()["Application"], subject) as app:
                    result = self.call(app, job)
                    check_picklable(result, "the result of %s" % subject.describe())
                    self.store(job, result, self.retries)
                    if not self.handed_over(job, before):
                        if group is not None and group.keep(job, self.job_oid, self.token, self.retries):
                            return job  # its commit is its group's
                        commit()
                if joining:
                    group.end(ended=True)  # (the members were in that commit)
                return job
            except ConflictError as exc:
                if self.leave_group():
                    return AGAIN
                transaction.abort()
                return self.after_conflict(job, exc)
            except StaleClaim:
                self.leave_group()
                raise
            except BaseException as exc:  # SystemExit, KeyboardInterrupt too
                if self.leave_group():
                    return AGAIN
                abort_quietly()
                return self.after_error(job, exc)

    def leave_group(self):
        """After members whose commit waits, this job failed: the group's transaction is
        aborted, they and it run again alone (True); no member before it: False."""
        group, self.group = self.group, None
        if group is None or not group.members:
            return False
        group.set_aside()
        return True

    def handed_over(self, job, before):
        """Group commit: hand the outcome of a job that wrote nothing to the dispatcher."""
        outcome = outcome_of(job, before) if before is not None else None
        if outcome is None:
            return False
        transaction.abort()
        self.runner.hand_over(self.job_oid, self.token, outcome)
        return True

    # -- steps 5 to 7: what an error leads to ---------------------------------------------

    def after_conflict(self, job, exc):
        """Retry after a pause; out of retries, run alone in the cluster once, then fail."""
        self.retries += 1
        self.last_seconds = time.monotonic() - self.began
        self.runner.gate.conflicted(self.kind, self.last_seconds)
        if self.retries > self.runner.retries_allowed(job):
            log.warning("Job %s: ConflictError after %d retries.", job.id, self.retries - 1)
            if self.run_as is None and not job.alone:  # it conflicts with other workers' jobs
                return self.wait_alone()
            return self.runner._store_failure(self.conn, self.job_oid, self.token, exc,
                                              self.retries - 1, self.run_as)
        self.pause = backoff(self.retries)
        return AGAIN

    def after_error(self, job, exc):
        """The database is away: wait, then again (step 6). Else the job's own error: another
        attempt later if the retry policy says so (step 7); else the job fails."""
        if is_outage(exc, self.conn.db()):
            self.disconnected = exc
            return AGAIN
        if self.run_as is None and wants_another_attempt(job, exc):
            return self.try_again(exc)
        return self.runner._store_failure(self.conn, self.job_oid, self.token, exc, self.retries,
                                          self.run_as)

    def wait(self):
        """Outside the gates: the pause after a conflict, or until the database is back."""
        pause, disconnected, self.pause, self.disconnected = self.pause, self.disconnected, None, None
        if pause is not None:
            time.sleep(pause)
        if disconnected is not None:
            self.wait_for_storage(disconnected)

    def wait_for_storage(self, exc):
        """Pause while the database is unreachable; give up after OUTAGE_LIMIT."""
        now = time.monotonic()
        if self.outage is None:
            log.warning("Database unreachable (%s); the job will run again once it is back.", exc)
            self.outage = now
        elif now - self.outage > OUTAGE_LIMIT:
            raise RuntimeError("Database unreachable for %d s: %s" % (OUTAGE_LIMIT, exc)) from exc
        time.sleep(OUTAGE_POLL)

    # -- filing the job again -------------------------------------------------------------

    def try_again(self, exc):
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
            with job_environment(self.conn.root()["Application"], job, strict=False):
                notify_guarded(JobRetrying(failure, job, next_try))

        return self.refile(refile, "for its next attempt")

    def wait_alone(self):
        """Out of conflict retries: the job runs once more, alone in the cluster (core/alonegate.py)."""
        job = self.refile(lambda root, job, attempt: wait_alone(root, job, utcnow()), "to run alone")
        log.warning("Job %s runs again once the jobs running in the cluster have finished.", job.id)
        return job

    def refile(self, refile, purpose):
        """Run ``refile(root, job, attempt)`` and commit, in a transaction of its own.

        It writes the queue's waiting tree and the worker's claims, which
        dispatchers write all the time: conflicts are likely and short.
        (Given up on, the job is handed back: that start still counts.)
        """
        for attempt in range(REFILE_TRIES):
            job = self.runner._load(self.conn, self.job_oid, self.token)
            try:
                refile(get_queue_root(self.conn, create=False), job, attempt)
                transaction.commit()
                return job
            except TransientError:
                transaction.abort()
                time.sleep(backoff(attempt, base=REFILE_PAUSE, cap=REFILE_PAUSE_MAX))
        raise RuntimeError("Could not file job %r %s" % (self.job_oid, purpose))
