"""The job: what to call, on what, as whom; and what came of it. Add-ons use ``IJob``.

A job is stored in the queue database (core/queue.py says where); ``derive``
makes the jobs that follow one (its callbacks, a batch, a recurrence's next run).
"""

from collective.zasync import interfaces
from collective.zasync.core.calls import describe_callable
from collective.zasync.core.failure import Failure
from datetime import datetime
from datetime import timezone
from persistent import Persistent
from persistent.list import PersistentList
from persistent.mapping import PersistentMapping
from zope.interface import implementer

import os
import time


def utcnow():
    """Now, as an aware datetime in UTC."""
    return datetime.now(timezone.utc)


def new_job_id():
    """A unique id that sorts by creation time: microseconds + random bits."""
    return "%014x%s" % (time.time_ns() // 1000, os.urandom(4).hex())


# What a job derived from another one (the next run of a recurring job, a
# callback, a batch) keeps: what it calls, and as whom, where, with which settings.
CALL = ("func_name", "func_obj", "func_attr", "args", "kwargs")
RUN_AS = ("context_path", "context_oid", "context_database", "site_path", "userfolder_path", "user_id",
          "queue_name", "quota_names", "max_retries", "context_uid", "priority",
          "retry_on", "max_attempts", "retry_backoff", "retry_backoff_max")

# CALLBACKS as the first development versions stored it (zc.async's value has no "s").
OLD_CALLBACKS = "callbacks-status"


@implementer(interfaces.IJob)
class Job(Persistent):
    """A persistent job. Built by the service; run by a worker."""

    status = interfaces.NEW
    _result = None
    begin_after = None
    begin_by = None
    queue_name = ""
    quota_names = ()
    unique_key = None
    user_deleted = False  # True once its user was deleted (plone/userlife.py): a new account of that id is not its user
    unique_entry = None  # its key in queue.unique: unique_key scoped to its site and user (client/service.py)
    worker_uuid = None
    retries = 0
    started = None
    ended = None
    claim_token = 0
    parent = None  # the batch this job belongs to, if any
    batch_kind = None  # "serial" or "parallel" for a batch job
    subjobs = ()
    callbacks = ()
    callback_kind = None  # "always", "success" or "failure" for a callback job
    _annotations = None
    events_fired = False  # IJobSuccess/IJobFailure sent
    context_oid = None
    context_database = None  # the name of the database the context is stored in (its oid is in that one)
    context_uid = None  # the context's UID (plone.uuid), when it has one
    attempts = 0  # how many times a worker started its function
    callback_claims = 0  # how many times a worker claimed it to fire its events and callbacks
    max_retries = None  # ConflictError retries, from the site's settings; None: the worker's
    recurrence = None  # a recurring.Recurrence for runs of a recurring job
    alone = False  # True: out of conflict retries, it waits to run (or runs) alone in the cluster (alonegate.py)
    alone_since = None  # when it last began to wait for that
    checkpoint_state = None  # the state of the last api.checkpoint(state), committed with its work
    checkpoints = 0  # how many checkpoints the job committed
    checkpointed = None  # when the last one was committed
    priority = 0  # among due jobs of its queue, a higher one starts first (priority.py)
    depends_on = ()  # jobs that must have finished before this one starts (dependencies.py)
    run_on_failure = False  # True: start even if one of depends_on failed
    # The item the job belongs to when queued with about= (else its context): indexes.py.
    about_path = None
    about_oid = None
    about_database = None
    about_uid = None
    # Retry policy (retrying.py): attempts after an error of these classes.
    retry_on = ()  # dotted names of exception classes ("module:qualname")
    max_attempts = None  # starts of its function at most, when retry_on is set
    retry_backoff = 10.0  # seconds: the pause after the first failed attempt ...
    retry_backoff_max = 3600.0  # ... doubling up to this, with jitter
    failed_attempts = 0  # attempts that raised a retry_on error and were tried again
    earlier_attempts = 0  # attempts before the administrator's last Retry (run again)
    last_error = None  # "Type: message" of the last such error
    next_try = None  # when the next attempt is due (aware datetime)

    def __init__(self, func_name=None, func_obj=None, func_attr=None, args=(), kwargs=None):
        self.id = new_job_id()
        self.func_name = func_name  # "module:qualname" of a function
        self.func_obj = func_obj  # a persistent object (or ObjectRef) ...
        self.func_attr = func_attr  # ... and the name of its method
        self.args = tuple(args)
        self.kwargs = dict(kwargs or {})
        self.context_path = None
        self.site_path = None
        self.userfolder_path = None
        self.user_id = None
        self.queued = utcnow()

    def __setstate__(self, state):
        if state.get("status") == OLD_CALLBACKS:
            state = dict(state, status=interfaces.CALLBACKS)
        super().__setstate__(state)

    def derive(self, call=True, **overrides):
        """A new job run like this one (calling the same if ``call``), then ``overrides`` set."""
        job = Job(*(getattr(self, name) for name in CALL)) if call else Job()
        for name in RUN_AS:
            setattr(job, name, getattr(self, name))
        for name, value in overrides.items():
            if not hasattr(job, name):
                raise TypeError("A job has no attribute %r to set." % name)
            setattr(job, name, value)
        return job

    # -- what to call ------------------------------------------------------

    def describe(self):
        """'module.func on /path', for logs and the control panel."""
        if self.batch_kind:
            what = "%s batch of %d jobs" % (self.batch_kind, len(self.subjobs))
        elif self.func_name:
            what = self.func_name.replace(":", ".")
        else:
            what = "%s.%s" % (getattr(self.func_obj, "path", "?"), self.func_attr)
        if self.context_path:
            return "%s on %s" % (what, self.context_path)
        return what

    def __repr__(self):
        return "<Job %s %s (%s)>" % (self.id, self.describe(), self.status)

    # -- result ------------------------------------------------------------

    @property
    def result(self):
        return self._result

    @property
    def failed(self):
        """True if the job completed with a Failure."""
        return isinstance(self._result, Failure)

    @property
    def annotations(self):
        # Created on first use: most jobs never need one.
        if self._annotations is None:
            self._annotations = PersistentMapping()
        return self._annotations

    # -- callbacks ---------------------------------------------------------

    def addCallback(self, callback):
        """Call ``callback(result)`` once the job is done; return the callback job."""
        return self._add_callback(callback, "always")

    def addCallbacks(self, success=None, failure=None):
        """Call ``success(result)`` or ``failure(failure)`` once the job is done."""
        if success is None and failure is None:
            raise ValueError("addCallbacks needs success=, failure= or both.")
        added = []
        if success is not None:
            added.append(self._add_callback(success, "success"))
        if failure is not None:
            added.append(self._add_callback(failure, "failure"))
        return added[0] if len(added) == 1 else added

    def _add_callback(self, func, kind):
        if self.status == interfaces.COMPLETED:
            raise ValueError(
                "Job %s is already completed: add callbacks before it runs." % self.id
            )
        func_name, func_obj, func_attr = describe_callable(func)
        callback = self.derive(
            call=False, func_name=func_name, func_obj=func_obj, func_attr=func_attr,
            context_path=None, context_oid=None, context_database=None, context_uid=None,
            callback_kind=kind, parent=self,
        )
        if not isinstance(self.callbacks, PersistentList):
            self.callbacks = PersistentList()
        self.callbacks.append(callback)
        return callback

    # -- life: every change of status goes through these ----------------------

    def begin(self, now):
        """The job starts (a worker runs its function, or its batch starts)."""
        self.status = interfaces.ACTIVE
        self.attempts += 1
        self.started = now

    def claim(self, worker_uuid, now):
        """A worker takes the job: to run its function, or its events and callbacks."""
        if self.status == interfaces.PENDING:
            self.begin(now)
        else:  # CALLBACKS: its outcome is stored
            self.callback_claims += 1
        self.worker_uuid = worker_uuid
        self.claim_token += 1  # a commit of an earlier claim will be refused

    def release(self):
        """Its worker gives the job back (stopping, dead, or its time is up)."""
        self.worker_uuid = None
        self.claim_token += 1
        if self.alone:  # its run alone ended (alonegate.wait_alone sets it again)
            self.alone = False
        if self.status == interfaces.ACTIVE:
            self.status = interfaces.PENDING

    def finish(self, result, retries=None):
        """Store the outcome, a value or a Failure; events and callbacks come next."""
        self._result = result
        if self.alone:  # its run alone is over: a later claim of it stops no other claim
            self.alone = False
        if retries is not None:
            self.retries = retries
        self.ended = utcnow()
        self.status = interfaces.CALLBACKS

    def try_again_at(self, when, error):
        """An attempt raised ``error`` (a retry_on error): wait until ``when``, then run again."""
        self.failed_attempts += 1
        self.last_error = str(error)
        self.begin_after = self.next_try = when

    def unfinished_starts(self):
        """Starts of this run that ended in no outcome (its worker died or stopped)."""
        return self.attempts - self.earlier_attempts - self.failed_attempts

    def complete(self):
        """Nothing is left to do for the job."""
        if self.ended is None:
            self.ended = utcnow()
        self.status = interfaces.COMPLETED

    def reset(self):
        """Forget how the job ran: it is NEW again, its callbacks too."""
        self._result = None
        self.ended = self.started = self.worker_uuid = None
        self.retries = 0
        self.alone = False
        self.events_fired = False
        self.callback_claims = 0
        self.begin_after = self.next_try = self.last_error = None
        self.earlier_attempts = self.attempts  # run again: a full set of attempts
        self.failed_attempts = 0
        for callback in self.callbacks:
            callback.status, callback._result = interfaces.NEW, None
        self.status = interfaces.NEW

    def callbacks_to_run(self):
        """Callback jobs that apply to this job's outcome and have not run."""
        wanted = {"always", "failure" if self.failed else "success"}
        return [
            cb
            for cb in self.callbacks
            if cb.callback_kind in wanted and cb.status != interfaces.COMPLETED
        ]


# A derived job (the next run, a retry's batch) belongs to the same item as its origin.
RUN_AS += ("about_path", "about_oid", "about_database", "about_uid")


def state_name(job, now=None):
    """'pending', 'delayed', 'active', 'failed', 'completed' or 'new': the state people see
    (the control panel, My jobs, the REST API, the command line, the metrics)."""
    if job.status == interfaces.COMPLETED:
        return "failed" if job.failed else "completed"
    if job.status == interfaces.PENDING:
        now = now or utcnow()
        if job.begin_after is not None and job.begin_after > now:
            return "delayed"
        return "pending"
    if job.status == interfaces.NEW:
        return "new"
    return "active"


def kind_of(job):
    """What makes jobs alike where they conflict: their function, or their method's name
    (the conflict gate, worker/conflictgate.py; steering, worker/steering.py)."""
    return job.func_name or job.func_attr
