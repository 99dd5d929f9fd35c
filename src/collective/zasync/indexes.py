"""Jobs by user and by content item: the indexes behind "My jobs" and "Background jobs".

Each queue keeps two OOBTrees, created on first use (databases written
before they existed get them from the upgrade step, ``build_indexes``):

- ``queue.by_user``: (user folder path, user id) -> OOBTree of jobs;
- ``queue.by_content``: ("oid", oid) or ("path", path) of the item a job
  belongs to (its context, or the item given as ``about=``) -> OOBTree of jobs.

The inner trees are keyed newest first (``newest_first_key``), so a page
of a user's jobs is read from the front of a BTree, never a scan. Who
writes them: the dispatchers, when they file a job that a request queued
(``filing.file_new``) or the next run of a recurring job, and when retention
removes finished jobs; an administrator's or user's action (cancel, remove)
in its request. A request that queues a job never writes them, so queueing
costs what it cost before. Anonymous jobs are not indexed by user.

The oid of an item does not change when it is moved or renamed: its jobs
stay listed on it.
"""

from Acquisition import aq_base
from BTrees.OOBTree import OOBTree
from collective.zasync import interfaces
from collective.zasync.environment import find_site
from collective.zasync.environment import path_of
from plone.uuid.interfaces import IUUID
from collective.zasync.setaside import load_error

import heapq
import itertools


# '0'..'f' -> 'f'..'0': a job id (hex microseconds first) turned into a key that sorts newest first.
_FLIP = str.maketrans("0123456789abcdef", "fedcba9876543210")
UNFILED_LOOKED_AT = 1000  # jobs still in an inbox looked at for a user's list


def newest_first_key(job):
    """The key of ``job`` in an index: its id with the time part reversed."""
    return newest_first_key_of(job.id)


def newest_first_key_of(job_id):
    return job_id[:14].translate(_FLIP) + job_id[14:]


def user_key(job):
    """(user folder path, user id) of the queuing user; None for Anonymous."""
    if job.user_id is None or job.userfolder_path is None:
        return None
    return (job.userfolder_path, job.user_id)


def content_keys_of(obj):
    """The index keys under which the jobs of content item ``obj`` are found."""
    keys = [("path", "/".join(obj.getPhysicalPath()))]
    oid = getattr(obj, "_p_oid", None)
    if oid is not None:
        keys.insert(0, ("oid", oid))
    return keys


def content_key(job):
    """The key of the item ``job`` belongs to: ``about=`` if given, else its context."""
    if job.about_path is not None:
        oid, path = job.about_oid, job.about_path
    else:
        oid, path = job.context_oid, job.context_path
    if oid is not None:
        return ("oid", oid)
    if path is not None:
        return ("path", path)
    return None


def belongs_to(job, item, site):
    """Mark ``job`` as belonging to content ``item`` (queueJob's ``about=``); raise on bad input."""
    if aq_base(find_site(item)) is not aq_base(site):
        raise ValueError(
            "about=%r is not in the site of the job's context (%s): pass a content item "
            "of the same site, traversed from it." % (item, path_of(site)))
    if getattr(item, "_p_oid", None) is None:
        raise ValueError(
            "about=%r is not stored in the database yet: add it to its container (and let "
            "the transaction commit, or call transaction.savepoint()) before queueing." % (item,))
    job.about_path = path_of(item)
    job.about_oid = item._p_oid
    job.about_uid = IUUID(item, None)


def _index(queue, name):
    """The queue's index ``name``, created on first use (by the dispatcher filing)."""
    tree = getattr(queue, name, None)
    if tree is None:
        tree = OOBTree()
        setattr(queue, name, tree)
    return tree


def _keys(job):
    return (("by_user", user_key(job)), ("by_content", content_key(job)))


def index_job(queue, job):
    """Add ``job`` to the user and content indexes of ``queue`` (again: no change)."""
    for name, key in _keys(job):
        if key is None:
            continue
        index = _index(queue, name)
        jobs = index.get(key)
        if jobs is None:
            jobs = index[key] = OOBTree()
        jobs.insert(newest_first_key(job), job)


def unindex_job(queue, job):
    """Take ``job`` out of the indexes of ``queue`` (it is removed for good)."""
    for name, key in _keys(job):
        index = getattr(queue, name, None)
        jobs = index.get(key) if index is not None and key is not None else None
        if jobs is not None:
            jobs.pop(newest_first_key(job), None)


def unindex_unloadable(queue, job_id, job):
    """Take a job that cannot be loaded (setaside.py) out of the indexes of ``queue``, by its id.

    Its index keys are not known without loading it: every inner tree is
    looked at, so this is for the rare job removed while it cannot be loaded.
    """
    key = newest_first_key_of(job_id)
    for name in ("by_user", "by_content"):
        for jobs in list((getattr(queue, name, None) or {}).values()):
            if jobs.get(key) is job:
                del jobs[key]


def build_indexes(root):
    """Index every job the queues hold (for databases written before the indexes); return how many."""
    count = 0
    for queue in root.queues.values():
        for job in queue.jobs.values():
            if job.parent is None or not job.parent.batch_kind:  # a batch is listed, not its parts
                index_job(queue, job)
                count += 1
    return count


# -- reading ------------------------------------------------------------------------


def _merged(trees):
    """Jobs of several index trees, newest first, each once."""
    seen = set()
    for _key, job in heapq.merge(*(tree.items() for tree in trees), key=lambda pair: pair[0]):
        if job.id not in seen:
            seen.add(job.id)
            yield job


def _unfiled(root, wanted):
    """Jobs queued and not filed yet (a few while a worker runs) for which ``wanted(job)``."""
    pairs = (pair for queue in root.queues.values() for inbox in queue.inboxes.values()
             for pair in inbox.unread(UNFILED_LOOKED_AT))
    found = [job for _key, job in itertools.islice(pairs, UNFILED_LOOKED_AT)
             if job.status == interfaces.PENDING and wanted(job)]
    return sorted(found, key=newest_first_key)


def _listing(root, name, keys, wanted):
    trees = []
    for queue in root.queues.values():
        index = getattr(queue, name, None)
        for key in keys if index is not None else ():
            tree = index.get(key)
            if tree is not None:
                trees.append(tree)
    # Not filed yet: newer than the filed ones. One filed meanwhile is shown once.
    seen = set()
    for job in itertools.chain(_unfiled(root, wanted), _merged(trees)):
        if load_error(job) is not None:
            continue  # set aside (setaside.py): listed in the control panel only
        if job.id not in seen:
            seen.add(job.id)
            yield job


def jobs_of_user(root, userfolder_path, user_id):
    """The jobs queued by that user, newest first, lazily (slice it)."""
    key = (userfolder_path, user_id)
    return _listing(root, "by_user", [key], lambda job: user_key(job) == key)


def jobs_of_content(root, obj):
    """The jobs that belong to content item ``obj``, newest first, lazily (slice it)."""
    keys = content_keys_of(obj)
    return _listing(root, "by_content", keys, lambda job: content_key(job) in keys)

