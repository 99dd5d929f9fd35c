"""Which unfinished jobs concern a content item, found by its UID without scanning jobs.

A job concerns the UIDs of its context and of the persistent objects passed
to it by reference. Each entry is written only by whoever already writes the
structure it is in, so that the index costs no ConflictError:

- ``inbox.uids``: written by the inbox's one writer (the queueing request)
  when it appends the job, dropped by that writer when it prunes what
  dispatchers have read (joblog.py);
- ``queue.by_uid``: written by dispatchers (and admin actions) when they file
  a job into ``waiting``, and when they file it finished.

Keys are ``"<uid> <inbox key or job id>"``: all entries of a UID are one
range of keys. Not for add-ons.
"""

from BTrees.OOBTree import OOTreeSet
from collective.zasync import interfaces
from collective.zasync.core.trees import made
from collective.zasync.core.trees import settle


def uid_keys(uid):
    """The (min, max) range of keys of ``uid``."""
    return uid + " ", uid + " \uffff"


def job_uids(job):
    """The UIDs a job concerns: its context's and those of its arguments passed by reference."""
    refs = [job.func_obj, *job.args, *job.kwargs.values()]
    uids = [getattr(job, "context_uid", None)] + [getattr(ref, "uid", None) for ref in refs]
    return sorted({uid for uid in uids if isinstance(uid, str) and uid})


# -- inboxes: written by the queueing request ----------------------------------------


def note_queued(inbox, key, job):
    """The inbox's writer appended ``job`` under ``key``: index it by its UIDs."""
    uids = job_uids(job)
    if not uids:
        return
    if inbox.uids is None:
        inbox.uids = OOTreeSet()  # keys only: the job is the inbox's entry under key
    for uid in uids:
        inbox.uids.add("%s %s" % (uid, key))
    settle(inbox.uids)  # (see trees.settle)


def forget_read(inbox, key, job, uids=None):
    """The inbox's writer dropped the read entry ``key``: drop its index entries (``uids``:
    the job's, from its filing card, the job not loaded)."""
    if inbox.uids is None:
        return
    for uid in job_uids(job) if uids is None else uids:
        inbox.uids.discard("%s %s" % (uid, key))


def unfiled_jobs(inbox, uid):
    """Jobs of ``uid`` that are in ``inbox`` and not filed yet."""
    tree = inbox.uids
    if tree is None:
        return []
    found = (inbox.get_unread(entry.split(" ", 1)[1]) for entry in tree.keys(*uid_keys(uid)))
    return [job for job in found if job is not None]


# -- queues: written by dispatchers ----------------------------------------------------


def index_filed(queue, job, job_id=None, uids=None):
    """``job`` is filed in ``waiting``: index it by its UIDs (``job_id``, ``uids``: from its
    filing card, cards.py, the job not loaded)."""
    uids = job_uids(job) if uids is None else uids
    if not uids:
        return
    job_id = job.id if job_id is None else job_id
    by_uid = made(queue, "by_uid")
    for uid in uids:
        key = "%s %s" % (uid, job_id)
        if key not in by_uid:
            by_uid[key] = job


def unindex_finished(queue, job):
    """``job`` is filed finished: it concerns its UIDs no more."""
    if queue.by_uid is None:
        return
    for uid in job_uids(job):
        queue.by_uid.pop("%s %s" % (uid, job.id), None)


def pending_jobs(queue, uid):
    """The pending and delayed jobs of ``queue`` that concern ``uid``, filed or not."""
    found = {}
    tree = queue.by_uid
    candidates = list(tree.values(*uid_keys(uid))) if tree is not None else []
    for inbox in queue.inboxes.values():
        candidates.extend(unfiled_jobs(inbox, uid))
    for job in candidates:
        if job.status == interfaces.PENDING:
            found[job.id] = job
    return list(found.values())
