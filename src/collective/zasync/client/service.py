"""IAsyncService: queue jobs in the current transaction. Add-ons use ``collective.zasync.api``
(``get_service()``, ``makeJob``), or ``collective.zasync.service.makeJob`` where
plone.app.async had it.

Each call checks its input at once and raises with what to do; the keyword arguments
it takes for itself (not for the job's function) are client/options.py's one list.
"""

from collective.zasync import interfaces
from collective.zasync.client.admin import cancel
from collective.zasync.client.admin import find_job
from collective.zasync.client.items import belongs_to
from collective.zasync.client.items import note_item
from collective.zasync.client.options import check_parameters
from collective.zasync.client.options import refuse_options
from collective.zasync.client.options import SINGLE_JOB_ONLY
from collective.zasync.client.options import take_options
from collective.zasync.client.sites import find_site
from collective.zasync.client.users import capture_user
from collective.zasync.core.calls import describe_callable
from collective.zasync.core.calls import path_of
from collective.zasync.core.calls import prepare_arguments
from collective.zasync.core.calls import uid_of
from collective.zasync.core.dependencies import check_database
from collective.zasync.core.dependencies import check_dependencies
from collective.zasync.core.job import Job
from collective.zasync.core.migration import put
from collective.zasync.core.priority import check_priority
from collective.zasync.core.queue import check_quotas
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.queue import Queue
from collective.zasync.core.recurring import Recurrence
from collective.zasync.core.retrying import check_policy
from collective.zasync.core.retrying import POLICY_KEYS
from datetime import datetime
from datetime import timedelta
from plone.registry.interfaces import IRegistry
from zope.component import queryUtility
from zope.component.hooks import getSite
from zope.interface import implementer


def makeJob(func, context, *args, **kwargs):
    """A job_info for queueSerialJobs / queueParallelJobs.

    The service's keyword arguments in ``kwargs`` apply to this job of the batch:
    ``quota_names`` (besides the batch's), ``priority``, ``about``, a retry policy.
    """
    return (func, context, args, kwargs)


def build_job(func, context, args, kwargs, options):
    """A NEW job for ``func(context, *args, **kwargs)`` with the service's ``options``, checked and captured."""
    site = find_site(context)
    func_name, func_obj, func_attr = describe_callable(func)
    check_parameters(func)
    policy = check_policy(**{name: options[name] for name in POLICY_KEYS if name in options})
    args, kwargs = prepare_arguments(args, kwargs)
    job = Job(func_name, func_obj, func_attr, args, kwargs)
    for name, value in policy.items():
        setattr(job, name, value)
    job.priority = check_priority(options.get("priority", 0))
    job.context_path = path_of(context)
    note_item(job, context)  # its oid and database (at commit, for an object not stored yet)
    job.context_uid = uid_of(context)
    job.site_path = path_of(site)
    job.userfolder_path, job.user_id = capture_user()
    job.max_retries = site_setting(site, "collective.zasync.max_retries")
    if options.get("about") is not None:
        belongs_to(job, options["about"], site)
    return job


def site_setting(site, name):
    """The site's registry record ``name`` (e.g. its 'Conflict retries'), or None without one."""
    registry = queryUtility(IRegistry, context=site)
    if registry is None:
        return None
    return registry.get(name)


def check_delay(begin_by, begin_after):
    """Refuse naive datetimes and wrong types, at queue time."""
    if begin_after is not None:
        if not isinstance(begin_after, datetime):
            raise TypeError("begin_after must be a datetime, not %r." % (begin_after,))
        if begin_after.tzinfo is None or begin_after.utcoffset() is None:
            raise ValueError(
                "begin_after has no time zone: pass an aware datetime, e.g. "
                "datetime.now(timezone.utc) + timedelta(minutes=5)."
            )
    if begin_by is not None and not isinstance(begin_by, timedelta):
        raise TypeError("begin_by must be a timedelta (or None), not %r." % (begin_by,))


def site_timezone(site):
    """The site's time zone (``plone.portal_timezone``), in which a cron schedule is read; UTC without one."""
    return site_setting(site, "plone.portal_timezone") or "UTC"


UNIQUE_SCOPES = ("user", "site")


def unique_entry(job, unique_key, scope):
    """The key ``job`` is known by among a queue's unique jobs: ``unique_key`` within its
    site, and within its user's jobs unless ``scope`` is "site"."""
    if not isinstance(unique_key, str):
        raise TypeError("unique_key must be a str, not %r." % (unique_key,))
    if scope == "user":
        return repr(("user", job.site_path, job.userfolder_path, job.user_id, unique_key))
    if scope == "site":
        return repr(("site", job.site_path, unique_key))
    raise ValueError("unique_scope is %s, not %r." % (" or ".join(map(repr, UNIQUE_SCOPES)), scope))


def same_user(job, other):
    return (job.userfolder_path, job.user_id) == (other.userfolder_path, other.user_id)


@implementer(interfaces.IAsyncService)
class AsyncService:
    """The utility add-ons call. Stateless: the queues live in the ZODB."""

    # -- queues ------------------------------------------------------------

    def _root(self, site=None):
        site = site if site is not None else getSite()
        jar = getattr(site, "_p_jar", None)
        if jar is None:
            raise ValueError(
                "No site is set (or it is not stored yet): call this inside a "
                "request or a job, or after zope.component.hooks.setSite(site)."
            )
        return get_queue_root(jar)

    def getQueues(self):
        """Mapping of name -> queue; the default queue is ''."""
        return self._root().queues

    def createQueue(self, name, concurrency=None):
        """Create the queue ``name`` if it does not exist; return it.

        ``concurrency``: how many of its jobs run at once, in order (None: no
        limit, no order). Given for an existing queue, it changes its limit.
        """
        return self._root().create_queue(name, concurrency)

    def getJob(self, job_id):
        """The job with ``job_id`` queued in the current site (finished ones while kept), or None.

        Unchecked: whoever queued it. A page that finds a job by an id it was
        given uses ``collective.zasync.api.get_job``, which checks.
        """
        if not isinstance(job_id, str):
            raise TypeError("A job id is a string (job.id), not %r." % (job_id,))
        return find_job(self.getQueues(), job_id, path_of(find_site(getSite())))

    def _queue(self, queue, site):
        if isinstance(queue, Queue):
            return queue
        queues = self._root(site).queues
        if queue not in queues:
            raise ValueError(
                "There is no queue named %r (there are: %s). Create it with "
                "getUtility(IAsyncService).createQueue(%r)."
                % (queue, ", ".join(repr(name) for name in queues.keys()), queue)
            )
        return queues[queue]

    # -- single jobs -------------------------------------------------------

    def queueJob(self, func, context, *args, **kwargs):
        """Queue ``func(context, *args, **kwargs)`` in the default queue (or ``queue=``)."""
        return self._queue_job(None, None, func, context, args, kwargs)

    def queueJobWithDelay(self, begin_by, begin_after, func, context, *args, **kwargs):
        """Queue a job that starts after ``begin_after``, within ``begin_by``."""
        return self._queue_job(begin_by, begin_after, func, context, args, kwargs)

    def queueJobInQueue(self, queue, quota_names, func, context, *args, **kwargs):
        """Queue a job in a named queue, counting against the named quotas."""
        return self._queue_job(None, None, func, context, args, kwargs, queue=queue, quota_names=quota_names)

    def queueJobInQueueWithDelay(
        self, begin_by, begin_after, queue, quota_names, func, context, *args, **kwargs
    ):
        """The general form of the calls above."""
        return self._queue_job(begin_by, begin_after, func, context, args, kwargs,
                               queue=queue, quota_names=quota_names)

    def _queue_job(self, begin_by, begin_after, func, context, args, kwargs, **given):
        """Queue a single job; ``given``: the queue and quotas that the call names as arguments
        (given as keywords too, Python refuses the call)."""
        options = take_options(kwargs)
        options.update(given)
        unique_key, unique_scope = options.get("unique_key"), options.get("unique_scope")
        if unique_scope is not None and unique_key is None:
            raise ValueError("unique_scope=%r without a unique_key: give both, or neither." % (unique_scope,))
        check_delay(begin_by, begin_after)
        job = build_job(func, context, args, kwargs, options)
        queue = self._queue(options.get("queue", ""), find_site(context))
        job.quota_names = check_quotas(queue, options.get("quota_names", ()))
        run_on_failure = options.get("run_on_failure", False)
        job.depends_on = check_dependencies(job, options.get("depends_on"), run_on_failure)
        job.run_on_failure = run_on_failure
        check_database(queue, job.depends_on)
        if unique_key is not None:
            # Scoped to the site and the user: a unique key never hands out
            # another user's job (its callbacks would run as that user).
            entry = unique_entry(job, unique_key, unique_scope or "user")
            existing = queue.find_unique(entry)
            if existing is not None:
                return existing if same_user(existing, job) else None
            job.unique_key, job.unique_entry = unique_key, entry
        job.begin_after, job.begin_by = begin_after, begin_by
        return put(queue, job)

    def queueRecurringJob(self, func, context, schedule, *args, **kwargs):
        """Run ``func(context, *args, **kwargs)`` on ``schedule`` until cancelled.

        ``schedule``: seconds, a timedelta or a cron line, in the time zone it names
        ("TZ=Europe/Brussels 0 3 * * *"), else the site's (core/recurring.py).
        The first run is due at the first scheduled time; returns that first
        run's job, whose ``.recurrence`` can be cancelled with ``cancelRecurringJob``.
        """
        options = take_options(kwargs)
        refuse_options(options, SINGLE_JOB_ONLY, "a recurring job")
        site = find_site(context)
        queue = self._queue(options.get("queue", ""), site)
        quota_names = check_quotas(queue, options.get("quota_names", ()))
        recurrence = Recurrence(schedule, site_timezone(site))
        job = build_job(func, context, args, kwargs, options)
        job.quota_names = quota_names
        job.recurrence = recurrence
        job.begin_after = recurrence.next_time(job.queued)
        recurrence.current = job
        return put(queue, job)

    def cancelRecurringJob(self, recurrence):
        """Stop a recurring job: no further run; a pending run is cancelled."""
        recurrence = getattr(recurrence, "recurrence", None) or recurrence
        recurrence.cancelled = True
        current = recurrence.current
        if current is not None:
            self._root().queues[current.queue_name].recurring.pop(recurrence.id, None)
            if current.status == interfaces.PENDING:
                cancel(current)
        return recurrence

    # -- batches -----------------------------------------------------------

    def queueSerialJobs(self, *job_infos):
        """Queue sub-jobs that run one after the other; return the batch job."""
        return self._queue_batch("serial", "", (), job_infos)

    def queueParallelJobs(self, *job_infos):
        """Queue sub-jobs that may run at once; return the batch job."""
        return self._queue_batch("parallel", "", (), job_infos)

    def queueSerialJobsInQueue(self, queue, quota_names, *job_infos):
        return self._queue_batch("serial", queue, quota_names, job_infos)

    def queueParallelJobsInQueue(self, queue, quota_names, *job_infos):
        return self._queue_batch("parallel", queue, quota_names, job_infos)

    def _queue_batch(self, kind, queue, quota_names, job_infos):
        if not job_infos:
            raise ValueError("A %s batch needs at least one job (from makeJob)." % kind)
        for info in job_infos:
            if not (isinstance(info, tuple) and len(info) == 4):
                raise TypeError(
                    "Batch items are built with collective.zasync.service."
                    "makeJob(func, context, *args, **kw), not %r." % (info,)
                )
        queue = self._queue(queue, find_site(job_infos[0][1]))
        quota_names = check_quotas(queue, quota_names)
        subjobs = []
        for func, context, args, kwargs in job_infos:
            kwargs = dict(kwargs)
            options = take_options(kwargs)
            refuse_options(options, SINGLE_JOB_ONLY, "a job of a batch")
            refuse_options(options, ("queue",), "a job of a batch", "it runs in its batch's queue")
            own = check_quotas(queue, options.get("quota_names", ()))
            subjob = build_job(func, context, args, kwargs, options)
            subjob.queue_name = queue.name
            subjob.quota_names = tuple(dict.fromkeys(quota_names + own))  # batch's first
            subjobs.append(subjob)
        batch = subjobs[0].derive(call=False, quota_names=(), batch_kind=kind)
        for subjob in subjobs:
            subjob.parent = batch
        batch.subjobs = tuple(subjobs)
        return put(queue, batch)
