"""The contract of collective.zasync: read this module and you know the package. Add-ons import it.

The names (IAsyncService, IJob, IQueue, IJobSuccess, IJobFailure and the
status constants) are those of plone.app.async, so that code written for it
ports by changing imports.
"""

from zope.interface import Attribute
from zope.interface import Interface
from zope.interface.interfaces import IObjectEvent
from zope.publisher.interfaces.browser import IDefaultBrowserLayer


# Job states, with plone.app.async's (and zc.async's) values.
NEW = "new-status"  # built, not queued yet
PENDING = "pending-status"  # queued, waiting for a worker (or for begin_after)
ASSIGNED = "assigned-status"  # claimed by a worker, not started yet
ACTIVE = "active-status"  # running in a worker thread
CALLBACKS = "callback-status"  # result stored, callbacks still to run
COMPLETED = "completed-status"  # finished: job.result is the value or a Failure

# The key of the queue container in the root of the queue's database.
KEY = "collective.zasync"


class IAsyncService(Interface):
    """Queue jobs. A utility: ``getUtility(IAsyncService)``.

    Every ``queue...`` call stores the job in the current transaction: it runs
    after that transaction commits, and never if it aborts. Each call checks
    its input at once and raises ``ValueError``/``TypeError`` on bad input.

    The keyword arguments the service takes for itself are never passed to
    the job's function: ``queue``, ``quota_names``, ``priority``, ``about``,
    ``unique_key``, ``unique_scope``, ``depends_on``, ``run_on_failure``,
    ``retry_on``, ``max_attempts``, ``retry_backoff``, ``retry_backoff_max``
    (one list: client/options.py). A job function with a parameter of one of
    these names is refused when queued: rename the parameter.

    Every call that takes ``func, context`` (and ``makeJob``) takes
    ``about=item``: a stored content item of the same site that the job
    belongs to instead of its context, so that it is listed in that item's
    "Background jobs" (``@@zasync-jobs``).
    """

    def queueJob(func, context, *args, **kwargs):
        """Queue ``func(context, *args, **kwargs)`` in the default queue (or ``queue=``).

        ``func`` is a module-level function or a method of a persistent
        object; ``context`` a persistent object inside a Plone site. The job
        runs as the current user, with the site set. ``queue`` (a name) and
        ``quota_names`` (a tuple of the queue's quotas) are taken by the
        service, not passed on, as the others above. Returns the job.

        ``unique_key``: if this user already has an unfinished job with that
        key in this queue and site, that job is returned and nothing is
        queued. ``unique_scope="site"`` (with a ``unique_key``) makes the key
        one per site instead: if another user's job holds it, nothing is
        queued and None is returned (never a handle on that user's job).

        Also taken by the service (by every queueJob... variant):
        ``priority`` (int from -10 to 10, default 0): among the due jobs of
        its queue, a higher priority starts first, equal ones in queueing
        order; strict, no aging (core/priority.py). ``depends_on`` (a queued job,
        or a list of them, of the same site): the job starts only once they
        have all finished; if one failed or was cancelled it fails at once,
        naming that job, unless ``run_on_failure=True`` (core/dependencies.py).
        ``makeJob`` and ``queueRecurringJob`` take ``priority`` too.
        A retry policy, also taken by the service (on every queue... call):
        ``retry_on`` (an exception class or a tuple of them, importable),
        ``max_attempts`` (default 3), ``retry_backoff`` (seconds or a
        timedelta, default 10) and ``retry_backoff_max`` (default 3600).
        An attempt that raises one of ``retry_on`` is aborted and the job
        waits in its queue until its next try (see core/retrying.py for the
        formula); after ``max_attempts`` it fails with the last error.
        """

    def queueJobWithDelay(begin_by, begin_after, func, context, *args, **kwargs):
        """Like queueJob, not started before ``begin_after`` (an aware
        datetime, or None) and failed with a timeout if it cannot start before
        ``begin_after + begin_by`` (a timedelta, or None for no limit)."""

    def queueJobInQueue(queue, quota_names, func, context, *args, **kwargs):
        """Like queueJob, in ``queue`` (a queue or its name), counting against
        the quotas named in ``quota_names`` (a tuple of names, may be empty)."""

    def queueJobInQueueWithDelay(
        begin_by, begin_after, queue, quota_names, func, context, *args, **kwargs
    ):
        """queueJobInQueue and queueJobWithDelay together."""

    def queueSerialJobs(*job_infos):
        """Queue jobs built with ``makeJob`` that run one after the other.

        Returns one job whose result is the list of the sub-jobs; a failing
        sub-job stops the rest, and the batch's result is then its failure.
        """

    def queueParallelJobs(*job_infos):
        """Queue jobs built with ``makeJob`` that may run at the same time.

        Returns one job that completes when every sub-job has finished; its
        result is the list of the sub-jobs.
        """

    def queueSerialJobsInQueue(queue, quota_names, *job_infos):
        """queueSerialJobs in the given queue; every sub-job counts against
        ``quota_names`` (and the ``quota_names`` given to its ``makeJob``)."""

    def queueParallelJobsInQueue(queue, quota_names, *job_infos):
        """queueParallelJobs in the given queue, with quotas as in queueSerialJobsInQueue."""

    def queueRecurringJob(func, context, schedule, *args, **kwargs):
        """Run the job on ``schedule`` as the current user until cancelled; runs
        never overlap. ``schedule``: seconds, a timedelta, or a cron line
        (``"0 3 * * MON-FRI"``, ``"@daily"``) in the time zone it names first
        (``"TZ=Europe/Brussels 0 3 * * *"``), else in the site's
        (``plone.portal_timezone``), kept across daylight-saving changes. Takes
        the service's keyword arguments but those of a single job only
        (unique_key, unique_scope, depends_on, run_on_failure). Returns the
        first run; ``job.recurrence`` identifies the series."""

    def cancelRecurringJob(recurrence):
        """Stop a recurring job (given its Recurrence or any of its runs)."""

    def getQueues():
        """A mapping of queue name to IQueue. The default queue is ``''``."""

    def createQueue(name, concurrency=None):
        """Create the queue ``name`` if it does not exist; return it.

        ``concurrency``: how many of its jobs may run at once, over all
        workers, started in order; None (the default): no limit, no order.
        Given for an existing queue, it changes its limit. The default
        queue's limit is a site setting: change it there (saving the
        settings writes it to the queue).
        """

    def getJob(job_id):
        """The job with that id queued in the current site, in any queue:
        queued, running, or finished while it is kept (retention); None for
        an unknown or removed id, or a job of another site.

        It checks no user: a page that finds a job by an id from a request
        uses ``collective.zasync.api.get_job`` (the user's own job, or any
        with "Manage portal"), else a job id becomes an access key."""


class IJob(Interface):
    """A unit of background work, stored in the ZODB."""

    id = Attribute("A unique, time-ordered string id.")
    status = Attribute("One of NEW, PENDING, ASSIGNED, ACTIVE, CALLBACKS, COMPLETED.")
    result = Attribute(
        "The return value; a Failure (with .type, .value, .getTraceback()) "
        "if the job raised; None while not COMPLETED."
    )
    begin_after = Attribute("An aware datetime: the job does not start before it.")
    begin_by = Attribute("A timedelta or None: the job fails unless started by begin_after + begin_by.")
    annotations = Attribute("A persistent mapping for add-ons' own data about the job.")
    queue_name = Attribute("The name of the queue the job is in.")
    quota_names = Attribute("Tuple of quota names the job counts against.")
    user_id = Attribute("The id of the user the job runs as; None for Anonymous.")
    userfolder_path = Attribute("Physical path of that user's user folder, as a string.")
    site_path = Attribute("Physical path of the Plone site, as a string.")
    context_path = Attribute("Physical path of the context, as a string.")
    context_uid = Attribute(
        "The context's UID (None for an object without one): the worker finds the context by it "
        "first, so a moved or renamed context is followed; deleting it fails the job if pending."
    )
    checkpoint_state = Attribute(
        "The state of the job's last api.checkpoint(state), committed with the work before it; "
        "None before the first. api.get_checkpoint() gives it to the running function."
    )
    checkpoints = Attribute("How many checkpoints the job committed.")
    worker_uuid = Attribute("UUID of the worker that ran (or runs) the job.")
    retries = Attribute(
        "Conflict retries: how many times its last attempt was run again after a ConflictError."
    )
    attempts = Attribute("Attempts: how many times a worker started the job's function.")
    alone = Attribute(
        "True once the job ran out of conflict retries: it then runs once more alone in the "
        "cluster (no worker claims anything else meanwhile) and fails if it conflicts that often again."
    )
    earlier_attempts = Attribute("Attempts before the administrator's last Retry (run again).")
    retry_on = Attribute(
        "Dotted names ('module:Class') of the exception classes after which a failed "
        "attempt is followed by another (queueJob(..., retry_on=...)); () for none."
    )
    max_attempts = Attribute("With retry_on: how many attempts at most (starts of the function).")
    retry_backoff = Attribute("With retry_on: seconds before the second attempt (doubling, capped).")
    retry_backoff_max = Attribute("With retry_on: the cap of that pause, in seconds.")
    failed_attempts = Attribute("Attempts that raised a retry_on error and were followed by another.")
    last_error = Attribute("'Type: message' of the last such error, or None.")
    next_try = Attribute("When the next attempt after such an error is due (aware datetime), or None.")
    queued = Attribute("When the job was queued (aware datetime).")
    started = Attribute("When the job last started, or None.")
    ended = Attribute("When the job finished, or None.")
    priority = Attribute("Among due jobs of its queue, a higher priority starts first (-10 to 10; 0).")
    depends_on = Attribute("Tuple of jobs that must have finished before this one starts.")
    run_on_failure = Attribute("True: start even if a job of depends_on failed.")
    about_path = Attribute("Path of the item given as ``about=`` when queued, or None (then: the context).")
    about_oid = Attribute("Its oid: the job stays listed on it when it is moved or renamed.")
    about_database = Attribute("The name of the database it is stored in (oids repeat across databases).")
    about_uid = Attribute("Its UID (plone.uuid), or None.")
    context_oid = Attribute("The context's oid (taken when the queueing transaction commits, for a "
                            "context not stored yet).")
    context_database = Attribute("The name of the database the context is stored in.")
    unique_key = Attribute("The unique_key it was queued with, or None (unique per site and user, "
                           "or per site with unique_scope='site').")
    user_deleted = Attribute("True once its user was deleted: it never runs, nor shows to a new "
                             "account with the same id.")

    def addCallback(callback):
        """Call ``callback(result)`` after the job completes; return the callback job."""

    def addCallbacks(success=None, failure=None):
        """Call ``success(result)`` or ``failure(failure)`` after the job completes."""

    def describe():
        """A one-line, human-readable description: 'module.func on /path'."""


class IQueue(Interface):
    """A named queue of jobs. ``len(queue)`` is the number of jobs waiting in it."""

    name = Attribute("The queue's name; the default queue is ''.")
    quotas = Attribute("A mapping of quota name to size (maximum running jobs).")
    concurrency = Attribute(
        "How many of its jobs may run at once, over all workers; None: no limit. "
        "With a limit, jobs start in the order they became due. The default queue's is "
        "1 (plone.app.async's default), a site setting."
    )

    def __len__():
        """The number of jobs waiting: queued and not claimed yet (due or delayed)."""

    def put(job):
        """Queue a job that is not queued yet (status NEW); return it."""

    def pending():
        """Iterate over pending jobs in the order they will be claimed."""

    def finished(failed=False):
        """Iterate over finished jobs, newest first; ``failed`` selects failures."""

    def get(job_id):
        """The job with that id (pending, running or finished), or None."""

    rate_limits = Attribute(
        "A mapping of quota name to (count, timedelta): jobs naming it in quota_names start at "
        "most count times in any such window, over all workers; checked when set "
        "(``queue.rate_limits['smtp'] = (60, timedelta(minutes=1))``). A name with a rate limit "
        "alone (no entry in quotas) may be used in quota_names."
    )

    def set_rate_limit(name, count, per=60):
        """Limit the starts of jobs naming ``name`` to ``count`` per ``per`` (seconds or a
        timedelta); ``count`` None or 0 removes the limit (jobs queued with it run unlimited)."""


class IWorker(Interface):
    """A worker process, as recorded in the queue database."""

    uuid = Attribute("The worker's UUID (from the file named by ZASYNC_UUID).")
    host = Attribute("Host name.")
    pid = Attribute("Process id.")
    threads = Attribute("How many jobs it runs at once.")
    last_ping = Attribute("Aware datetime of the last ping.")

    def is_alive(death_interval):
        """True if the last ping is younger than ``death_interval`` seconds."""


class IJobEvent(IObjectEvent):
    """Something happened to a job."""

    job = Attribute("The job.")


class IJobSuccess(IJobEvent):
    """A job completed; ``object`` is its result, ``job`` the job."""


class IJobFailure(IJobEvent):
    """A job failed; ``object`` is the Failure, ``job`` the job."""


class IJobStarted(IJobEvent):
    """A worker is about to call the job's function; ``object`` and ``job`` are the job.

    Notified in the job's transaction, with the job's site and user set. A
    subscriber that raises vetoes the run: the job fails with that error
    (as if the function had raised it; a retry_on policy applies to it too).
    """


class IJobRetrying(IJobEvent):
    """An attempt raised an error of the job's ``retry_on``; the job will run again.

    ``object`` and ``error`` are the Failure of that attempt, ``next_try``
    when the next attempt is due. Notified in the transaction that files the
    job again (the attempt's own was aborted); a failing subscriber is logged
    and does not stop the next attempt.
    """

    error = Attribute("The Failure of the attempt.")
    next_try = Attribute("When the next attempt is due (aware datetime).")


class IQueueDatabase(Interface):
    """Names the database that holds the queues (a utility; default 'main')."""

    name = Attribute("The database name, as in zope.conf's <zodb_db NAME>.")


class IJobFunction(Interface):
    """A job function offered through the web: a named utility, registered
    with ``<zasync:jobFunction name function title permission />`` (meta.zcml).

    The vocabulary ``collective.zasync.JobFunctions`` lists those the current
    user may run; the content rule action "Run in the background" and the
    GenericSetup step ``zasync.xml`` name them.
    """

    name = Attribute("The name it is registered under (the vocabulary's value).")
    function = Attribute("The module-level function, called as function(context).")
    title = Attribute("What people choose in the web.")
    description = Attribute("A longer explanation, may be empty.")
    permission = Attribute("The permission id needed on the context, e.g. cmf.ModifyPortalContent.")

    def allowed(context):
        """True if the current user has the permission on ``context``."""


class ICollectiveZasyncLayer(IDefaultBrowserLayer):
    """The browser layer of collective.zasync (profiles/default/browserlayer.xml): its pages and
    services answer only where the add-on is installed. (Sites installed before 1.0 store it as
    ``collective.zasync.browser.interfaces.ICollectiveZasyncLayer``: moved.py.)"""
