"""The read model: what the control panel, the REST API, the command line and the metrics
show about queues, jobs and workers. Not for add-ons.

Read-only helpers shared by browser/controlpanel.py, restapi/services.py and client/cli.py
(what a user sees of their own jobs: client/personal.py). Nothing here iterates all
finished jobs: counts come from the queues' ``Length`` counters, lists are sliced with
``itertools.islice`` from the BTrees (newest first), so a queue with 100,000 completed
jobs shows as fast as an empty one. The admin actions are in client/admin.py.

Sites may share one queue database: every reader takes the ``site_path``
of the site it shows (None: the whole database, for the worker's metrics
port), and sees that site's jobs only. While a queue holds jobs of this site
alone the counters and trees serve as they are; once it holds another
site's too, counts and lists come from the queue's index of this site's jobs
(core/indexes.py): they cost what this site keeps, not what the database does.
(The jobs kept from before that index are in it once the upgrade step to
profile version 1004 ran.)
"""

from collective.zasync import interfaces
from collective.zasync.client.admin import failed_parts
from collective.zasync.client.lookup import get_progress
from collective.zasync.core import priority as priorities
from collective.zasync.core.cancelling import cancel_request
from collective.zasync.core.dependencies import dependency_id
from collective.zasync.core.dependencies import set_aside_of
from collective.zasync.core.dependencies import waiting_for
from collective.zasync.core.failure import Failure
from collective.zasync.core.indexes import holds_other_sites
from collective.zasync.core.indexes import jobs_of_site
from collective.zasync.core.job import state_name  # (the front ends' too: reading.state_name)
from collective.zasync.core.job import utcnow
from collective.zasync.core.keys import due_key
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.setaside import error_text
from collective.zasync.core.setaside import load_error
from collective.zasync.core.setaside import set_aside_jobs
from collective.zasync.core.setaside import stored_id
from collective.zasync.defaults import PAGE_SIZE
from collective.zasync.defaults import REPR_LIMIT
from collective.zasync.defaults import UNFILED_LOOKED_AT

import itertools


STATES = ("pending", "delayed", "active", "failed", "completed")
FINISHED_STATES = ("failed", "completed")
UNLOADABLE = "unloadable"  # the state a list shows of a job that cannot be loaded
SUMMARY_FIELDS = ("id", "queue", "state", "status", "description", "context_path", "user", "queued",
                  "begin_after", "started", "ended", "retries", "attempts", "progress",
                  "progress_data", "failure")
DETAIL_FIELDS = ("callable", "site_path", "userfolder_path", "worker_uuid", "begin_by", "result",
                 "traceback", "parent", "batch_kind", "recurrence", "priority", "max_attempts",
                 "failed_attempts", "last_error", "next_try", "cancel_requested_by")


def queue_root(context, create=True):
    """The QueueRoot of the database behind ``context`` (None if missing and not ``create``)."""
    return get_queue_root(context._p_jar, create=create)


def set_aside(root):
    """(key, job id, error, when, where) of the jobs set aside (core/setaside.py), oldest first."""
    return set_aside_jobs(root)


def site_jobs(queue, site_path):
    """The jobs of ``queue`` of the site ``site_path``: not filed yet (among the first
    UNFILED_LOOKED_AT, a few while a worker runs), then filed (newest first)."""
    unfiled = itertools.islice((job for inbox in queue.inboxes.values()
                                for _key, job in inbox.unread(UNFILED_LOOKED_AT)), UNFILED_LOOKED_AT)
    pending = (job for job in unfiled if job.status == interfaces.PENDING and job.site_path == site_path)
    return itertools.chain(pending, jobs_of_site(queue, site_path))


def truncate(text, limit=REPR_LIMIT):
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def safe_repr(value, limit=REPR_LIMIT):
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the panel
        text = "<unrepresentable %s: %s>" % (type(value).__name__, exc)
    return truncate(text, limit)


def isoformat(when):
    return when.isoformat() if when is not None else None


def _first_unfiled(queue):
    """The first UNFILED_LOOKED_AT jobs still in the inboxes of ``queue`` (a few while a worker runs)."""
    return itertools.islice((job for inbox in queue.inboxes.values() for _key, job in inbox.unread(UNFILED_LOOKED_AT)),
                            UNFILED_LOOKED_AT)


def _unfiled(queue, state, now):
    """Queued jobs in ``state`` still in an inbox: a few while a worker runs.

    With no worker running they can be a million: delayed ones are looked for
    among the first UNFILED_LOOKED_AT, as queue_counts counts them (the rest
    count as pending), so that listing them reads no more than counting them.
    """
    if state == "pending":
        unfiled = (job for inbox in queue.inboxes.values() for _key, job in inbox.unread())  # (lazy: a page)
    else:
        unfiled = _first_unfiled(queue)
    for job in unfiled:
        if job.status == interfaces.PENDING and state_name(job, now) == state:
            yield job


def _active(root, queue):
    """Jobs of ``queue`` claimed by a worker, and its running batches."""
    claimed = (
        job
        for worker in root.workers.values()
        for job in worker.claimed.values()
        if job.queue_name == queue.name and job.status != interfaces.COMPLETED
    )
    return itertools.chain(claimed, queue.batches.values())


def _unfiled_finished(root, queue, failed):
    """Finished jobs of ``queue`` that their worker has not filed yet (a few at most)."""
    state = "failed" if failed else "completed"
    unfiled = itertools.chain(
        (job for worker in root.workers.values() for job in worker.claimed.values()),
        # moved to its worker's done log, not filed by the finisher yet (worker/filing.py)
        (job for worker in root.workers.values() if worker.done is not None
         for _key, job in worker.done.unread()),
    )
    return [
        job
        for job in unfiled
        if job.queue_name == queue.name and job.status == interfaces.COMPLETED
        and state_name(job) == state
    ]


def jobs_in_state(root, queue, state, now=None, site_path=None):
    """An iterator over the jobs of ``queue`` in ``state`` (one of STATES), of the site ``site_path``.

    Finished jobs come newest first, pending ones in the order they will be
    claimed (in a queue shared with other sites: all newest first). Lazy:
    slice it, never list() it.
    """
    now = now or utcnow()
    if state not in STATES:
        raise ValueError("Unknown state %r; one of %s." % (state, ", ".join(STATES)))
    if site_path is not None and holds_other_sites(queue, site_path):
        return (job for job in site_jobs(queue, site_path) if state_name(job, now) == state)
    return _jobs_in_state(root, queue, state, now)


def _jobs_in_state(root, queue, state, now):
    due = due_key(now.timestamp())
    if state == "pending":
        due_jobs = (job for job in priorities.due_jobs(queue, due) if job.worker_uuid is None)  # see keys.waits
        return itertools.chain(due_jobs, _unfiled(queue, state, now))
    if state == "delayed":
        return itertools.chain(priorities.delayed_jobs(queue, due), _unfiled(queue, state, now))
    if state == "active":
        return _active(root, queue)
    if state in FINISHED_STATES:
        failed = state == "failed"
        tree = queue.failed if failed else queue.completed
        return itertools.chain(_unfiled_finished(root, queue, failed), tree.values())
    raise ValueError("Unknown state %r; one of %s." % (state, ", ".join(STATES)))


def queue_counts(root, queue, now=None, site_path=None):
    """Number of jobs by state, from the counters (and the few jobs not filed yet), of the site ``site_path``."""
    now = now or utcnow()
    if site_path is not None and holds_other_sites(queue, site_path):
        counts = dict.fromkeys(STATES, 0)
        for job in site_jobs(queue, site_path):
            state = state_name(job, now)
            if state in counts:
                counts[state] += 1
        return counts
    # Jobs still in an inbox are few while a worker runs; with none running
    # they can be many: look at the first UNFILED_LOOKED_AT, count the rest as pending.
    unfiled = sum(inbox.unread_count() for inbox in queue.inboxes.values())
    seen = [state_name(job, now) for job in _first_unfiled(queue)]
    unfiled_delayed = seen.count("delayed")
    # Delayed jobs are usually few; due ones may be many: count the former.
    filed_delayed = priorities.count_delayed(queue, due_key(now.timestamp()))
    filed = queue.waiting_count()
    finished = [state_name(job) for job in _unfiled_finished(root, queue, False)] + [
        state_name(job) for job in _unfiled_finished(root, queue, True)]
    return {
        "pending": max(filed - filed_delayed, 0) + unfiled - unfiled_delayed,
        "delayed": filed_delayed + unfiled_delayed,
        "active": sum(1 for _ in _active(root, queue)),
        "failed": queue.failed_count() + finished.count("failed"),
        "completed": queue.completed_count() + finished.count("completed"),
    }


def page(iterator, b_start=0, b_size=PAGE_SIZE):
    """(items, more): one page of an iterator, and whether more follow."""
    items = list(itertools.islice(iterator, b_start, b_start + b_size + 1))
    return items[:b_size], len(items) > b_size


def progress_of(job):
    """(value, data) while the job runs and has reported progress, else None."""
    try:
        progress = get_progress(job)
    except Exception:
        return None
    if progress is None or progress[0] < 0:
        return None
    return progress


def job_summary(job, now=None):
    """The fields of a job that a list shows."""
    error = load_error(job)
    if error is not None:
        return unloadable_summary(job, error)
    progress = progress_of(job)
    return {
        "id": job.id,
        "queue": job.queue_name,
        "state": state_name(job, now),
        "status": job.status,
        "description": job.describe(),
        "context_path": job.context_path,
        "user": job.user_id,
        "queued": job.queued,
        "begin_after": job.begin_after,
        "started": job.started,
        "ended": job.ended,
        "retries": job.retries,
        "attempts": job.attempts,
        "progress": progress[0] if progress else None,
        "progress_data": progress[1] if progress else None,
        "failure": str(job.result) if job.failed else None,
    }


def unloadable_summary(job, error):
    """The fields of a job whose pickle no longer loads (a class of its arguments or result
    changed since: core/setaside.py), so that a list of finished jobs still shows: its id,
    read from its record, and the error. No action applies to it."""
    info = dict.fromkeys(SUMMARY_FIELDS)
    info.update({"id": stored_id(job) or job._p_oid.hex(), "state": UNLOADABLE,
                 "description": "Cannot be loaded: %s" % error_text(error)})
    return info


def job_detail(job):
    """Everything about a job, for the detail page and GET @zasync-jobs/<id>."""
    info = job_summary(job)
    if info["state"] == UNLOADABLE:
        info.update(dict.fromkeys(DETAIL_FIELDS), quota_names=[], args=[], kwargs={}, subjobs=[],
                    actions=[], depends_on=[], waiting_for=[], retry_on=[], run_on_failure=False)
        return info
    result = job.result
    func = job.func_name.replace(":", ".") if job.func_name else "%s.%s" % (
        getattr(job.func_obj, "path", "?"), job.func_attr)
    info.update({
        "callable": func,
        "site_path": job.site_path,
        "userfolder_path": job.userfolder_path,
        "worker_uuid": job.worker_uuid,
        "begin_by": job.begin_by.total_seconds() if job.begin_by is not None else None,
        "quota_names": list(job.quota_names),
        "args": [safe_repr(arg) for arg in job.args],
        "kwargs": {str(key): safe_repr(value) for key, value in sorted(job.kwargs.items())},
        "result": None if result is None or isinstance(result, Failure) else safe_repr(result),
        "traceback": result.getTraceback() if isinstance(result, Failure) else None,
        "parent": job.parent.id if job.parent is not None else None,
        "batch_kind": job.batch_kind,
        "subjobs": [sub.id for sub in job.subjobs],
        "recurrence": recurrence_info(job.recurrence) if job.recurrence is not None else None,
        "actions": available_actions(job),
        "priority": priorities.priority_of(job),
        "depends_on": [dependency_id(dep, set_aside_of(job)) for dep in job.depends_on],
        "run_on_failure": job.run_on_failure,
        "waiting_for": waiting_for(job),
        # A retry policy's attempts (core/retrying.py) and a request to stop (core/cancelling.py).
        "retry_on": list(job.retry_on),
        "max_attempts": job.max_attempts,
        "failed_attempts": job.failed_attempts,
        "last_error": job.last_error,
        "next_try": job.next_try,
        "cancel_requested_by": cancel_requested_by(job),
    })
    return info


def rate_limits_info(queue):
    """A queue's rate limits: name -> {"count", "per" (seconds)}."""
    limits = queue.rate_limits
    return {name: {"count": count, "per": per.total_seconds()} for name, (count, per) in limits.items()}


def available_actions(job):
    state = state_name(job)
    if state == "failed" or (job.status == interfaces.COMPLETED and failed_parts(job)):
        return ["retry", "remove"]
    if state == "completed":
        return ["remove"]
    if state in ("pending", "delayed") and not (job.parent is not None and job.parent.batch_kind):
        return ["cancel"]
    if state == "active" and not job.batch_kind:
        return ["cancel"]  # asks it to stop
    return []


def cancel_requested_by(job):
    """Who asked the running job to stop (a user id, "" for Anonymous), or None."""
    if job.status != interfaces.ACTIVE:
        return None
    request = cancel_request(get_queue_root(job._p_jar, create=False), job.id)
    return None if request is None else (request[0] or "")


def recurrence_info(recurrence):
    current = recurrence.current
    return {
        "id": recurrence.id,
        "schedule": recurrence.describe(),
        "runs": recurrence.runs,
        "cancelled": recurrence.cancelled,
        "created": recurrence.created,
        "description": current.describe() if current is not None else None,
        "current": current.id if current is not None else None,
        "next_run": current.begin_after if current is not None else None,
        "queue": current.queue_name if current is not None else None,
    }


def worker_info(worker):
    return {
        "uuid": worker.uuid,
        "host": worker.host,
        "pid": worker.pid,
        "threads": worker.threads,
        "started": getattr(worker, "started", None),
        "last_ping": worker.last_ping,
        "alive": worker.is_alive(),
        "death_interval": worker.death_interval,
        "active": sum(1 for job in worker.claimed.values() if job.status != interfaces.COMPLETED),
    }


def recurrences(queue, site_path=None):
    """The recurring jobs of ``queue`` (of the site ``site_path``)."""
    return [recurrence for recurrence in queue.recurring.values()
            if site_path is None or getattr(recurrence.current, "site_path", None) == site_path]


def find_recurrence(root, recurrence_id, site_path=None):
    for queue in root.queues.values():
        recurrence = queue.recurring.get(recurrence_id)
        if recurrence is not None:
            return recurrence if recurrence in recurrences(queue, site_path) else None
    return None


def jsonable(value):
    """Datetimes as ISO 8601 strings, the rest unchanged (recursively)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return safe_repr(value)
