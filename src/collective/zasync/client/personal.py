"""What a user sees of jobs: their own ("My jobs") and an item's ("Background jobs"), for the
pages of browser/myjobs.py and the services of restapi/personal.py alike. Not for add-ons.

Jobs are found through the indexes (core/indexes.py), never by a scan of the queues.
"""

from collective.zasync.client import admin
from collective.zasync.client.permissions import may_manage
from collective.zasync.client.permissions import own_job
from collective.zasync.client.reading import progress_of
from collective.zasync.client.reading import REPR_LIMIT
from collective.zasync.client.reading import safe_repr
from collective.zasync.client.reading import truncate
from collective.zasync.client.sites import site_path_of
from collective.zasync.core.failure import Failure
from collective.zasync.core.indexes import jobs_of_content
from collective.zasync.core.indexes import jobs_of_user
from collective.zasync.core.job import state_name
from plone.base.interfaces import IPloneSiteRoot
from zExceptions import Forbidden


def readable_error(failure, limit=REPR_LIMIT):
    """One line saying what went wrong (the traceback's last line), never the traceback."""
    return truncate(" ".join(str(failure).split()), limit)


def personal_summary(job, full=False, own=True, now=None):
    """A job as its user sees it; ``full`` (Manage portal) adds arguments and the traceback.

    ``own``: the viewer queued it; someone else's job (on an item the viewer
    may modify) shows no result, only its state and a readable error.
    """
    progress = progress_of(job)
    result = job.result
    failed = isinstance(result, Failure)
    state = state_name(job, now)
    info = {
        "id": job.id,
        "state": state,
        "description": job.describe(),
        "context_path": job.context_path,
        "about_path": job.about_path,
        "user": job.user_id,
        "queued": job.queued,
        "begin_after": job.begin_after,
        "started": job.started,
        "ended": job.ended,
        "progress": progress[0] if progress else None,
        "result": None if failed or result is None or not (own or full) else safe_repr(result),
        "error": readable_error(result) if failed else None,
        "cancellable": own and state in ("pending", "delayed") and not (
            job.parent is not None and job.parent.batch_kind),
    }
    if full:
        info.update({
            "args": [safe_repr(arg) for arg in job.args],
            "kwargs": {str(key): safe_repr(value) for key, value in sorted(job.kwargs.items())},
            "traceback": result.getTraceback() if failed else None,
        })
    return info


def my_jobs(root, context, key):
    """The jobs the user ``key`` queued in the site of ``context``, newest first, lazily (slice it)."""
    return jobs_of_user(root, *key, site_path=site_path_of(context))


def content_jobs(root, context, key):
    """The jobs of the item ``context``, lazily; of the user ``key`` only on the site root.

    Every job queued without a content item has the site root as its context:
    who may modify the site root sees their own there, unless they have "Manage portal".
    """
    jobs = jobs_of_content(root, context)
    if IPloneSiteRoot.providedBy(context) and not may_manage(context):
        return (job for job in jobs if key is not None and own_job(job, key))
    return jobs


def cancel_own(root, job_id, key, site_path):
    """Cancel the pending job ``job_id`` of user ``key`` in the site ``site_path``;
    Forbidden (403) for another user's job."""
    job = admin.find_job(root.queues, job_id, site_path)
    if job is None or not own_job(job, key):
        # The same answer for someone else's job and for no job: ids are not revealed.
        raise Forbidden("You can cancel only your own background jobs.")
    admin.cancel(job)
    return job
