"""Where a filed job is: waiting (one tree per priority) or finished (completed, failed).

The moves of one job between those trees and their counters; core/lifecycle.py says
what comes with them (a batch's next job, dependents, the next run). Not for add-ons.
Every function works in the caller's transaction.
"""

from collective.zasync import interfaces
from collective.zasync.core.indexes import unindex_job
from collective.zasync.core.indexes import unindex_unloadable
from collective.zasync.core.keys import finished_key
from collective.zasync.core.keys import waiting_key
from collective.zasync.core.priority import priority_of
from collective.zasync.core.priority import tree_for
from collective.zasync.core.setaside import load_error
from collective.zasync.core.totals import count_left
from collective.zasync.core.uidindex import index_filed


def timed_out(job, now):
    """True if the job had to start by begin_after + begin_by, and it is later."""
    if job.begin_by is None:
        return False
    return (job.begin_after or job.queued) + job.begin_by < now


def file_waiting(queue, job):
    """Put ``job`` among the waiting jobs of ``queue``."""
    if job.status not in (interfaces.PENDING, interfaces.CALLBACKS):
        job.status = interfaces.PENDING
    add_waiting(queue, job, priority_of(job), waiting_key(job))
    index_filed(queue, job)


def add_waiting(queue, job, priority, key):
    """Put ``job`` in the waiting tree of ``priority`` under ``key``: the trees and counters alone."""
    tree = tree_for(queue, priority, create=True)
    if tree.get(key) is not job:  # else its entry is still there, claimed and given back since
        tree[key] = job
        queue.waiting_count.change(1)
        if queue.waiting_added is not None:  # (None until migrated: layout 5)
            queue.waiting_added.change(1)  # wakes hungry dispatchers (filing.wake_oids)


def unfile_waiting(queue, job):
    """Take a job out of ``waiting``; False if it is not there."""
    tree = tree_for(queue, priority_of(job))
    if tree is None:
        return False
    # Layout 1 keyed jobs without begin_after by 0 (migration.py re-keys them).
    for key in (waiting_key(job), "%016d.%s" % (0, job.id)):
        if tree.pop(key, None) is not None:
            queue.waiting_count.change(-1)
            return True
    return False


def finished_tree(queue, failed):
    """(tree, counter) of the failed (or completed) jobs of ``queue``."""
    if failed:
        return queue.failed, queue.failed_count
    return queue.completed, queue.completed_count


def add_finished(queue, job):
    """Put a finished job among the completed (or failed) jobs of ``queue``: the trees alone."""
    tree, length = finished_tree(queue, job.failed)
    tree[finished_key(job)] = job
    length.change(1)
    if queue.jobs.get(job.id) is not job:  # setting it again would write its bucket all the same
        queue.jobs[job.id] = job


def unfile_finished(queue, job):
    """Take a finished job out of the completed/failed BTree it is filed in."""
    tree, length = finished_tree(queue, job.failed)
    if tree.pop(finished_key(job), None) is not None:
        length.change(-1)
        count_left(queue, job.failed)  # the metrics' totals never go down
        return True
    return False


def is_filed_finished(queue, job):
    return finished_key(job) in finished_tree(queue, job.failed)[0]


def forget_finished(queue, key, job):
    """A finished job, taken out of its tree at ``key``, is removed: from the jobs and the indexes."""
    job_id = key.split(".", 1)[1]
    if queue.jobs.get(job_id) is job:
        del queue.jobs[job_id]
    if load_error(job) is None:
        unindex_job(queue, job)
    else:  # (its pickle no longer loads: setaside.py)
        unindex_unloadable(queue, job_id, job)


def remove_all_finished(queue, failed):
    """Remove every completed (or failed) job of ``queue``; return how many."""
    tree, length = finished_tree(queue, failed)
    count = 0
    for key, job in list(tree.items()):
        del tree[key]
        forget_finished(queue, key, job)
        count += 1
    length.change(-count)
    count_left(queue, failed, count)
    return count
