"""Dependencies across requests: a job that starts once other jobs have finished.

``queueJob(func, context, depends_on=job_or_jobs, run_on_failure=False)``

At queue time every dependency must be a job already queued (earlier in the
same transaction, or before), of the same site and database. Cycles cannot
happen: a dependency exists before its dependent, and a job's dependencies
never change.

When a dispatcher files the dependent (``file_or_block``): if all its
dependencies have finished, it is decided at once: it waits like any job,
or, if one failed (or was cancelled) and ``run_on_failure`` is false, it
fails at once with a ``DependencyFailed`` naming that job. Otherwise it is
kept aside in ``QueueRoot.blocked``, never in ``waiting`` (claims never look
at it), one entry per unfinished dependency, keyed by the dependency's id.
Filing a finished job (``lifecycle.file_finished``: a dispatcher, a cancel, a
serial batch's "Not run") takes out that job's entries and decides each
dependent again, whatever queue it is in. Not for add-ons (``depends_on`` is the service's).

Reading a dependency's state while filing: ``readCurrent`` makes the commit
fail (the dispatcher retries) if the dependency's own commit changed it
meanwhile, so a dependency never finishes unseen between that read and the
commit of the entry. Dependencies are held by reference: a dependency
removed by the retention or an administrator is still read.
"""

from collective.zasync import interfaces
from collective.zasync.core.failure import Failure
from collective.zasync.core.job import Job
from collective.zasync.core.places import file_waiting
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.setaside import error_text
from collective.zasync.core.setaside import load_error
from collective.zasync.core.setaside import stored_id
from collective.zasync.core.setaside import stored_text
from collective.zasync.core.trees import made

import logging


log = logging.getLogger("collective.zasync")


class DependencyFailed(Exception):
    """A job this one depends on failed or was cancelled."""


def check_dependencies(job, depends_on, run_on_failure):
    """The dependencies as a tuple of queued jobs of ``job``'s site; raise with what to do if bad."""
    if not isinstance(run_on_failure, bool):
        raise TypeError("run_on_failure is True or False, not %r." % (run_on_failure,))
    if depends_on is None:
        return ()
    jobs = (depends_on,) if not isinstance(depends_on, (tuple, list)) else tuple(depends_on)
    for dependency in jobs:
        if not isinstance(dependency, Job):
            raise TypeError("depends_on takes jobs (what queueJob returned), or a list of them, "
                            "not %r." % (dependency,))
        if dependency.status == interfaces.NEW:
            raise ValueError("Job %s is not queued: queue it first, then the job that depends on "
                             "it (for a job of a batch, depend on the batch)." % dependency.id)
        if dependency.site_path != job.site_path:
            raise ValueError("Job %s belongs to the site %s, not %s: a job depends only on jobs "
                             "of its own site." % (dependency.id, dependency.site_path, job.site_path))
    return tuple(dict.fromkeys(jobs))


def check_database(queue, dependencies):
    """Raise if a dependency is stored in another database than ``queue``."""
    jar = queue._p_jar
    for dependency in dependencies:
        if jar is not None and dependency._p_jar is not None and dependency._p_jar.db() is not jar.db():
            raise ValueError("Job %s is in another database than queue %r: a job depends only on "
                             "jobs of its own queue database." % (dependency.id, queue.name))


def blocked_of(queue, create=False):
    """The QueueRoot's BTree of blocked jobs ("<dependency id> <job id>" -> job), or None."""
    root = get_queue_root(queue._p_jar, create=False) if queue._p_jar is not None else None
    if root is None:
        return None
    return made(root, "blocked") if create else root.blocked


def unfinished(job):
    """The dependencies of ``job`` that have not finished (one set aside has not: it is
    retried, or removed, by an administrator; ``drop_removed``)."""
    aside = set_aside_of(job)
    return [dep for dep in job.depends_on
            if dep._p_oid in aside or load_error(dep) is not None or dep.status != interfaces.COMPLETED]


def failed_unloadable(queue, job):
    """Fail ``job`` if one of its dependencies can no longer be loaded, is not set aside and has
    finished (its class changed after it finished, say); True if it did. Filing would otherwise
    fail on it at every pass, or wait for it for ever.

    One that has not finished (filed unloaded from its card: cards.py) is set aside where
    a claim meets it: ``job`` waits for it, as for any job set aside.
    """
    aside = set_aside_of(job)
    for dependency in job.depends_on:
        error = load_error(dependency) if dependency._p_oid not in aside else None
        if error is not None and stored_text(dependency, "status") == interfaces.COMPLETED:
            unblock(queue, job)
            fail(queue, job, "Not run: job %s, which it depends on, can no longer be loaded (%s). "
                             "Fix the code it needs, then retry this job."
                             % (dependency_id(dependency, aside), error_text(error)))
            return True
    return False


def set_aside_of(job):
    """The QueueRoot's jobs set aside (oid -> entry) of ``job``'s database, maybe empty."""
    root = get_queue_root(job._p_jar, create=False) if job._p_jar is not None else None
    return (root.set_aside if root is not None else None) or {}


def dependency_id(dependency, aside):
    """The id of ``dependency`` in ``blocked``'s keys, without loading it if it is set aside
    (it may not load: core/setaside.py); its hex oid if it was set aside without an id."""
    if dependency._p_oid in aside:
        return aside[dependency._p_oid][4] or dependency._p_oid.hex()
    if load_error(dependency) is not None:
        return stored_id(dependency) or dependency._p_oid.hex()
    return dependency.id


def file_or_block(queue, job):
    """File a new job that has dependencies: waiting, failed, or kept aside until they finish."""
    if failed_unloadable(queue, job):
        return
    pending = unfinished(job)
    if not pending:
        return decide(queue, job)
    blocked = blocked_of(queue, create=True)
    aside = set_aside_of(job)
    for dependency in pending:
        if dependency._p_jar is not None and dependency._p_oid is not None and load_error(dependency) is None:
            dependency._p_jar.readCurrent(dependency)  # its commit meanwhile makes ours retry
        blocked["%s %s" % (dependency_id(dependency, aside), job.id)] = job


def unblock(queue, job):
    """Take ``job`` out of ``blocked`` (it ends before its dependencies did: cancelled, say)."""
    blocked = blocked_of(queue)
    aside = set_aside_of(job) if blocked is not None else {}
    for dependency in job.depends_on if blocked is not None else ():
        blocked.pop("%s %s" % (dependency_id(dependency, aside), job.id), None)


def decide(queue, job):
    """Every dependency of ``job`` (in ``queue``) finished: it waits, or fails at once."""

    failed = [dep for dep in job.depends_on if dep.failed]
    if failed and not job.run_on_failure:
        dependency = failed[0]
        return fail(queue, job, "Not run: job %s (%s), which it depends on, failed: %s. Retry that "
                                "job, then this one (or queue it with run_on_failure=True)."
                                % (dependency.id, dependency.describe(), dependency.result))
    file_waiting(queue, job)


def fail(queue, job, message):
    """``job`` does not run because of a dependency: it fails with ``message``."""
    job.finish(Failure(DependencyFailed(message)))
    log.error("Job %s (%s) failed: %s", job.id, job.describe(), job.result)
    file_waiting(queue, job)  # (failed: a thread fires its events and callbacks)


def release_dependents(queue, finished):
    """``finished`` was filed as finished: decide the jobs that waited only for it."""
    blocked = blocked_of(queue)
    if blocked is None:
        return
    prefix = finished.id + " "
    keys = list(blocked.keys(min=prefix, max=prefix + "\xff"))
    if not keys:
        return
    root = get_queue_root(queue._p_jar, create=False)
    for key in keys:
        job = blocked.pop(key, None)
        if job is None or job.status != interfaces.PENDING:
            continue  # decided with an earlier dependency of this pass; or cancelled while it waited
        its_queue = root.queues[job.queue_name]
        if failed_unloadable(its_queue, job):
            continue
        if not unfinished(job):
            unblock(its_queue, job)  # (its other dependencies finished too, maybe not filed yet)
            decide(its_queue, job)


def drop_removed(root, removed, removed_id):
    """An administrator removed ``removed``, a job set aside that may not load (its id:
    ``removed_id``, maybe None): the jobs blocked on it are decided now, as if it had failed. Else
    they would wait for it for ever.

    A job queued with ``run_on_failure`` no longer depends on it (it runs once its other
    dependencies finished); any other fails, and says why.
    """
    blocked = root.blocked
    if blocked is None:
        return
    if removed_id is not None:
        keys = list(blocked.keys(min=removed_id + " ", max=removed_id + " \xff"))
    else:  # (set aside without its id: by an earlier version)
        keys = [key for key, job in blocked.items() if any(dep is removed for dep in job.depends_on)]
    for key in keys:
        job = blocked.pop(key)
        if job.status != interfaces.PENDING:
            continue  # (cancelled while it waited)
        queue = root.queues[job.queue_name]
        if job.run_on_failure:
            job.depends_on = tuple(dep for dep in job.depends_on if dep is not removed)
            if not unfinished(job):
                decide(queue, job)
            continue
        unblock(queue, job)
        fail(queue, job, "Not run: job %s, which it depends on, could not be loaded and was removed "
                         "by an administrator. Queue this job again if it should still run."
                         % (removed_id or "(set aside without an id)"))


def waiting_for(job):
    """Ids of the jobs a pending job still waits for (empty for most jobs)."""
    if job.status != interfaces.PENDING:
        return []
    aside = set_aside_of(job)
    return [dependency_id(dep, aside) for dep in unfinished(job)]
