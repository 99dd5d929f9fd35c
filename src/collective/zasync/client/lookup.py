"""Finding the service, a job by its id, a job's progress. Add-ons use these through ``collective.zasync.api``."""

from collective.zasync import interfaces
from collective.zasync.client.permissions import may_see
from collective.zasync.core.queue import get_queue_root
from zope.component import getUtility


def get_service():
    """The registered IAsyncService (a shortcut for getUtility)."""
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


def get_progress(job):
    """(-1, None) before the job starts, (value, data) while it runs, None when done.

    ``job`` is a job or its id, looked up with ``get_job``: an unknown id, or a
    job the current user may not see (another user's), raises LookupError.
    """
    if isinstance(job, str):
        found = get_job(job)
        if found is None:
            raise LookupError("No job %r that you may see (unknown, another user's, or removed after "
                              "the retention)." % job)
        job = found
    if job.status == interfaces.COMPLETED:
        return None
    if job.status in (interfaces.NEW, interfaces.PENDING) or job.worker_uuid is None:
        return (-1, None)
    record = get_queue_root(job._p_jar, create=False).workers.get(job.worker_uuid)
    return record.progress_of(job) if record is not None else (0, None)
