"""IAsyncService: queue jobs in the current transaction."""

from AccessControl import getSecurityManager
from collective.zasync import interfaces
from collective.zasync.actions import cancel
from collective.zasync.actions import find_job
from collective.zasync.callables import describe_callable
from collective.zasync.callables import object_reference
from collective.zasync.callables import prepare_arguments
from collective.zasync.callables import uid_of
from collective.zasync.job import Job
from collective.zasync.queue import check_quotas
from collective.zasync.queue import get_queue_root
from collective.zasync.queue import Queue
from collective.zasync.dependencies import check_database
from collective.zasync.dependencies import check_dependencies
from collective.zasync.priority import check_priority
from collective.zasync.recurring import Recurrence
from collective.zasync.retrying import take_policy
from collective.zasync.environment import find_site
from collective.zasync.environment import path_of
from collective.zasync.indexes import belongs_to
from collective.zasync.indexes import note_item
from collective.zasync.security import capture_user
from datetime import datetime
from datetime import timedelta
from zope.component.hooks import getSite
from zope.interface import implementer


def makeJob(func, context, *args, **kwargs):
    """A job_info for queueSerialJobs / queueParallelJobs.

    ``quota_names`` in ``kwargs`` is taken by the service: quotas this job
    counts against besides the batch's.
    """
    return (func, context, args, kwargs)


def build_job(func, context, args, kwargs):
    """A NEW job for ``func(context, *args, **kwargs)``, checked and captured."""
    site = find_site(context)
    about = kwargs.pop("about", None)  # the item the job is listed on, if not its context
    func_name, func_obj, func_attr = describe_callable(func)
    policy = take_policy(kwargs)  # retry_on & co. are for the service, not the function
    args, kwargs = prepare_arguments(args, kwargs)
    job = Job(func_name, func_obj, func_attr, args, kwargs)
    for name, value in policy.items():
        setattr(job, name, value)
    job.context_path = path_of(context)
    note_item(job, context)  # its oid and database (at commit, for an object not stored yet)
    job.context_uid = uid_of(context)
    job.site_path = path_of(site)
    job.userfolder_path, job.user_id = capture_user()
    job.max_retries = site_max_retries(site)
    if about is not None:
        belongs_to(job, about, site)
    return job


def site_max_retries(site):
    """The site's 'Conflict retries' setting, or None without one."""
    from plone.registry.interfaces import IRegistry
    from zope.component import queryUtility

    registry = queryUtility(IRegistry, context=site)
    if registry is None:
        return None
    return registry.get("collective.zasync.max_retries")


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


def refuse_unique_key(kwargs, what):
    """Raise if ``kwargs`` has a unique_key, which only a single job can have."""
    for name in ("unique_key", "unique_scope"):
        if name in kwargs:
            raise ValueError(
                "Cannot queue %s with a %s: only single jobs (queueJob and its "
                "variants) take one. Remove it." % (what, name)
            )


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


def refuse_dependencies(kwargs, what):
    """Raise if ``kwargs`` has depends_on or run_on_failure, which only a single job can have."""
    for name in ("depends_on", "run_on_failure"):
        if name in kwargs:
            raise ValueError("Cannot queue %s with %s: only single jobs (queueJob and its variants) "
                             "take one. Remove it." % (what, name))


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
        """Queue ``func(context, *args, **kwargs)`` in the default queue."""
        quota_names = kwargs.pop("quota_names", ())
        return self.queueJobInQueueWithDelay(
            None, None, "", quota_names, func, context, *args, **kwargs
        )

    def queueJobWithDelay(self, begin_by, begin_after, func, context, *args, **kwargs):
        """Queue a job that starts after ``begin_after``, within ``begin_by``."""
        quota_names = kwargs.pop("quota_names", ())
        return self.queueJobInQueueWithDelay(
            begin_by, begin_after, "", quota_names, func, context, *args, **kwargs
        )

    def queueJobInQueue(self, queue, quota_names, func, context, *args, **kwargs):
        """Queue a job in a named queue, counting against the named quotas."""
        return self.queueJobInQueueWithDelay(
            None, None, queue, quota_names, func, context, *args, **kwargs
        )

    def queueJobInQueueWithDelay(
        self, begin_by, begin_after, queue, quota_names, func, context, *args, **kwargs
    ):
        """The general form of the calls above."""
        unique_key = kwargs.pop("unique_key", None)
        unique_scope = kwargs.pop("unique_scope", None)
        if unique_scope is not None and unique_key is None:
            raise ValueError("unique_scope=%r without a unique_key: give both, or neither." % (unique_scope,))
        priority = check_priority(kwargs.pop("priority", 0))
        depends_on, run_on_failure = kwargs.pop("depends_on", None), kwargs.pop("run_on_failure", False)
        check_delay(begin_by, begin_after)
        job = build_job(func, context, args, kwargs)
        queue = self._queue(queue, find_site(context))
        job.quota_names = check_quotas(queue, quota_names)
        job.priority = priority
        job.depends_on = check_dependencies(job, depends_on, run_on_failure)
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
        return queue.put(job)

    def queueRecurringJob(self, func, context, schedule, *args, **kwargs):
        """Run ``func(context, *args, **kwargs)`` on ``schedule`` until cancelled.

        ``schedule``: seconds, a timedelta or a cron line (UTC). The first run
        is due at the first scheduled time; returns that first run's job,
        whose ``.recurrence`` can be cancelled with ``cancelRecurringJob``.
        Keyword arguments ``queue`` and ``quota_names`` are taken by the service.
        """
        queue = self._queue(kwargs.pop("queue", ""), find_site(context))
        quota_names = check_quotas(queue, kwargs.pop("quota_names", ()))
        priority = check_priority(kwargs.pop("priority", 0))
        refuse_unique_key(kwargs, "a recurring job")
        refuse_dependencies(kwargs, "a recurring job")
        recurrence = Recurrence(schedule)
        job = build_job(func, context, args, kwargs)
        job.quota_names = quota_names
        job.priority = priority
        job.recurrence = recurrence
        job.begin_after = recurrence.next_time(job.queued)
        recurrence.current = job
        return queue.put(job)

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
            own = check_quotas(queue, kwargs.pop("quota_names", ()))
            priority = check_priority(kwargs.pop("priority", 0))
            refuse_unique_key(kwargs, "a job of a batch")
            refuse_dependencies(kwargs, "a job of a batch")
            subjob = build_job(func, context, args, kwargs)
            subjob.queue_name = queue.name
            subjob.priority = priority
            subjob.quota_names = tuple(dict.fromkeys(quota_names + own))  # batch's first
            subjobs.append(subjob)
        batch = subjobs[0].derive(call=False, quota_names=(), batch_kind=kind)
        for subjob in subjobs:
            subjob.parent = batch
        batch.subjobs = tuple(subjobs)
        return queue.put(batch)


def get_service():
    """The registered IAsyncService (a shortcut for getUtility)."""
    from zope.component import getUtility

    return getUtility(interfaces.IAsyncService)


def get_job(job_id):
    """The job ``job_id`` of the current site if the current user may see it, else None.

    They may see their own jobs, and every job of the site with "Manage
    portal" there. An unknown id and another user's job give the same None:
    a job id is not an access key.
    """
    job = get_service().getJob(job_id)
    if job is None or may_see(job):
        return job
    return None


def may_see(job):
    """True if the current user queued ``job`` (an account of that id not deleted since), or may manage the site."""
    if getSecurityManager().checkPermission("Manage portal", find_site(getSite())):
        return True
    userfolder_path, user_id = capture_user()
    return user_id is not None and (job.userfolder_path, job.user_id) == (userfolder_path, user_id) and (
        not job.user_deleted)


__all__ = ["AsyncService", "makeJob", "object_reference"]
