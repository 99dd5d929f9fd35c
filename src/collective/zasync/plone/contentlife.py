"""Jobs follow the content's life: a deleted context fails its pending jobs at once.

Moves and renames need nothing here: a job keeps its context's UID and the
worker finds it by UID first (worker/loading.py). A deletion fails every
pending or delayed job whose context (or an argument passed by reference) is
the deleted object or inside it, in the deleting transaction: when the delete
commits, those jobs are failed with it, and no worker can start them after.
Not for add-ons.
"""

from collective.zasync.core.calls import path_of
from collective.zasync.core.calls import uid_of
from collective.zasync.core.lifecycle import end_unstarted
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.uidindex import pending_jobs

import logging


log = logging.getLogger("collective.zasync")


class ContentDeleted(LookupError):
    """The content a job was queued for was deleted before the job ran."""


def content_removed(obj, event):
    """IObjectRemovedEvent of content (also for each item of a deleted folder)."""
    if event.newParent is not None:  # a move fires IObjectMovedEvent only; be sure
        return
    uid = uid_of(obj)
    jar = getattr(obj, "_p_jar", None)
    if not uid or jar is None:
        return
    root = get_queue_root(jar, create=False)
    if root is None:
        return
    path = path_of(obj)
    for queue in root.queues.values():
        for job in pending_jobs(queue, uid):
            fail_deleted(queue, job, path)


def fail_deleted(queue, job, path):
    """End a pending job failed, like a cancelled one: it never starts."""
    if fail_pending(queue, job, ContentDeleted("the content was deleted: %s" % path)):
        log.info("Job %s (%s) failed: the content was deleted.", job.id, job.describe())


def fail_pending(queue, job, error):
    """End a pending job failed with ``error``, like a cancelled one; False for a batch's sub-job.

    A recurring job's run takes its recurrence with it: no further runs.
    """
    if job.parent is not None and job.parent.batch_kind:
        return False  # a batch's sub-job fails when it runs (its batch must go on)
    end_unstarted(queue, job, error)
    if job.recurrence is not None:
        stop_recurrence(queue, job.recurrence)
    return True


def stop_recurrence(queue, recurrence):
    """No further runs of ``recurrence``."""
    recurrence.cancelled = True
    queue.recurring.pop(recurrence.id, None)
