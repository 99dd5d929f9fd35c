"""Bringing a queue database written by an earlier release to the current layout.

Run by a worker when it starts, by the first request that queues a job, and
by the profile's upgrade step: whichever comes first, in its transaction.
Pending, delayed, running and finished jobs all keep their place.
"""

from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from collective.zasync import filing
from collective.zasync import interfaces
from collective.zasync.queue import file_waiting
from collective.zasync.queue import get_queue_root
from collective.zasync.queue import DEFAULT_QUEUE_CONCURRENCY
from collective.zasync.queue import LAYOUT
from collective.zasync.queue import LimitMark
from collective.zasync.queue import waiting_key
from collective.zasync.priority import waiting_trees
from collective.zasync.settings import sync_with_queue_database
from plone import api

import logging


log = logging.getLogger("collective.zasync")


def migrate(root):
    """Bring ``root`` (a QueueRoot) to the current layout; True if anything changed."""
    if root.layout >= LAYOUT:
        return False
    for queue in root.queues.values():
        _migrate_queue(root, queue)
        if root.layout < 4:
            _rekey_given_back(queue)
        if "limit_mark" not in queue.__dict__:  # layout 2
            queue.limit_mark = LimitMark()
            if queue.name == "":  # plone.app.async's default: one job at a time, in order
                queue.concurrency = DEFAULT_QUEUE_CONCURRENCY
    for uuid, record in list(root.workers.items()):
        record._p_activate()  # a ghost's __dict__ is empty
        if "active" in record.__dict__:  # a worker of layout 1: its jobs go back
            _take_back_layout1(root, record)
            del root.workers[uuid]
    root.layout = LAYOUT
    log.info("Moved the queues to layout %d.", LAYOUT)
    return True


def _migrate_queue(root, queue):
    queue._p_activate()  # a ghost's __dict__ is empty
    state = queue.__dict__
    if "waiting" in state:
        return
    # Layout 1 keyed jobs without begin_after by 0: re-key them by when they are due.
    queue.waiting = OOBTree()
    queue.waiting_count = Length()
    for job in state.get("pending_jobs", {}).values():
        file_waiting(queue, job)
    queue.inboxes = OOBTree()
    queue.inbox_count = Length()
    for job in state.get("inbox", ()):
        filing.file_new(queue, job)
    for job in state.get("done", ()):  # finished jobs of dead workers, not filed yet
        filing.file_done(root, job)
    for name in ("pending_jobs", "pending_count", "inbox", "done"):
        if name in state:
            delattr(queue, name)


def _rekey_given_back(queue):
    """Layout 3 keyed a job given back after a claim as before it: it gets its new key (queue.waiting_key)."""
    for _priority, tree in waiting_trees(queue):
        for key, job in list(tree.items()):
            if job.claim_token and job.worker_uuid is None and key == waiting_key(job).rsplit(".", 1)[0]:
                del tree[key]
                tree[waiting_key(job)] = job


def _take_back_layout1(root, record):
    for job in record.__dict__.get("done", ()):
        filing.file_done(root, job)
    for job in record.__dict__.get("active", ()):
        job.release()
        if job.status in (interfaces.PENDING, interfaces.CALLBACKS):
            file_waiting(root.queues[job.queue_name], job)


def upgrade_to_1001(context):
    """GenericSetup upgrade step: the new settings, and the queue database's layout."""
    context.runImportStepFromProfile("profile-collective.zasync:default", "plone.app.registry")
    site = api.portal.get()
    migrate(get_queue_root(site._p_jar))
    sync_with_queue_database(site)


def upgrade_jobs_of_users_and_content(context):
    """GenericSetup upgrade step: "My jobs" in the user menu, and the indexes of the jobs kept."""
    from collective.zasync.indexes import build_indexes

    context.runImportStepFromProfile("profile-collective.zasync:default", "actions")
    site = api.portal.get()
    count = build_indexes(get_queue_root(site._p_jar), site)
    log.info("Indexed %d jobs by user and by content item.", count)


def upgrade_to_1003(context):
    """GenericSetup upgrade step: the health check's setting (health_max_wait)."""
    context.runImportStepFromProfile("profile-collective.zasync:default", "plone.app.registry")


def upgrade_to_1004(context):
    """GenericSetup upgrade step: jobs indexed by site, and by item with its database (issue 29)."""
    from collective.zasync.indexes import build_indexes

    site = api.portal.get()
    count = build_indexes(get_queue_root(site._p_jar), site)
    log.info("Indexed %d jobs by site and by item (database and oid).", count)
