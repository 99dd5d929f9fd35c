"""Bringing a queue database written by an earlier release to the current layout. Not for add-ons.

Run by a worker when it starts, by the first request that queues a job, and
by the profile's upgrade step: whichever comes first, in its transaction.
Pending, delayed, running and finished jobs all keep their place. (Old module
paths of the stored classes: moved.py.)
"""

from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from collective.zasync import interfaces
from collective.zasync.core.keys import waiting_key
from collective.zasync.core.lifecycle import file_done
from collective.zasync.core.lifecycle import file_new
from collective.zasync.core.places import file_waiting
from collective.zasync.core.priority import waiting_trees
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.queue import LAYOUT
from collective.zasync.core.queue import LimitMark
from collective.zasync.defaults import DEFAULT_QUEUE_CONCURRENCY

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
        if queue.waiting_added is None:  # layout 4
            queue.waiting_added = Length()
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
        file_new(queue, job)
    for job in state.get("done", ()):  # finished jobs of dead workers, not filed yet
        file_done(root, job)
    for name in ("pending_jobs", "pending_count", "inbox", "done"):
        if name in state:
            delattr(queue, name)


def _rekey_given_back(queue):
    """Layout 3 keyed a job given back after a claim as before it: it gets its new key (keys.waiting_key)."""
    for _priority, tree in waiting_trees(queue):
        for key, job in list(tree.items()):
            if job.claim_token and job.worker_uuid is None and key == waiting_key(job).rsplit(".", 1)[0]:
                del tree[key]
                tree[waiting_key(job)] = job


def _take_back_layout1(root, record):
    for job in record.__dict__.get("done", ()):
        file_done(root, job)
    for job in record.__dict__.get("active", ()):
        job.release()
        if job.status in (interfaces.PENDING, interfaces.CALLBACKS):
            file_waiting(root.queues[job.queue_name], job)


def put(queue, job):
    """``queue.put(job)``; a database of 1.0.0a1 that no worker has opened yet is migrated first."""
    if queue.inboxes is None:
        migrate(get_queue_root(queue._p_jar))
    return queue.put(job)
