"""Jobs by user, by content item and by site: the indexes behind "My jobs", an item's
"Background jobs" and each site's view of a queue database that sites share.

Each queue keeps three OOBTrees, created on first use (databases written
before they existed get them from the upgrade steps, ``build_indexes``):

- ``queue.by_user``: (user folder path, user id) -> OOBTree of jobs;
- ``queue.by_item``: "<database name>:<oid in hex>" of the item a job
  belongs to (its context, or the item given as ``about=``) -> OOBTree of
  jobs (oids repeat across databases: never the oid alone);
- ``queue.by_site``: the path of the site a job was queued in -> OOBTree of jobs.

The inner trees are keyed newest first (``newest_first_key``), so a page
of a user's jobs is read from the front of a BTree, never a scan; an inner
tree goes with its last job. Who writes them: the dispatchers, when they file
a job that a request queued (``filing.file_new``) or the next run of a
recurring job, and when retention removes finished jobs; an administrator's
or user's action (cancel, remove) in its request. A request that queues a
job never writes them, so queueing costs what it cost before. Anonymous jobs
are not indexed by user.

The oid of an item does not change when it is moved or renamed: its jobs
stay listed on it (the service notes it: client/items.py). Not for add-ons.
"""

from Acquisition import aq_base
from BTrees.OOBTree import OOBTree
from collective.zasync import interfaces
from collective.zasync.core.calls import path_of
from collective.zasync.core.setaside import load_error
from collective.zasync.core.trees import made
from collective.zasync.defaults import UNFILED_LOOKED_AT

import heapq
import itertools


# '0'..'f' -> 'f'..'0': a job id (hex microseconds first) turned into a key that sorts newest first.
_FLIP = str.maketrans("0123456789abcdef", "fedcba9876543210")


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


def item_key_of(database_name, oid):
    return "%s:%s" % (database_name, oid.hex())


def stored_item_key(obj):
    """The ``by_item`` key of a stored object ``obj``; None if it is not stored yet."""
    oid, jar = getattr(aq_base(obj), "_p_oid", None), getattr(aq_base(obj), "_p_jar", None)
    return item_key_of(jar.db().database_name, oid) if oid is not None and jar is not None else None


def item_key(job):
    """The key of the item ``job`` belongs to: ``about=`` if given, else its context; or None."""
    if job.about_path is not None:
        oid, database = job.about_oid, job.about_database
    else:
        oid, database = job.context_oid, job.context_database
    return item_key_of(database, oid) if oid is not None and database is not None else None


def _keys(job):
    return (("by_user", user_key(job)), ("by_item", item_key(job)), ("by_site", job.site_path))


def index_job(queue, job):
    """Add ``job`` to the indexes of ``queue`` (again: no change)."""
    index_under(queue, job, job.id, _keys(job))


def index_under(queue, job, job_id, keys):
    """Add ``job`` (id ``job_id``) to the indexes of ``queue`` under ``keys``: (index name, key) pairs.

    What index_job does from the job, and filing from its card (cards.py), without loading it.
    """
    for name, key in keys:
        if key is None:
            continue
        index = made(queue, name)
        jobs = index.get(key)
        if jobs is None:
            jobs = index[key] = OOBTree()
        jobs.insert(newest_first_key_of(job_id), job)


def unindex_job(queue, job):
    """Take ``job`` out of the indexes of ``queue`` (it is removed for good); an emptied tree goes.

    A dispatcher adding a job to that tree meanwhile writes it too: one of the
    two commits conflicts and is retried (BTrees resolve no emptied bucket).
    """
    for name, key in _keys(job):
        index = getattr(queue, name)
        jobs = index.get(key) if index is not None and key is not None else None
        if jobs is not None:
            jobs.pop(newest_first_key(job), None)
            if not jobs:
                del index[key]


def forget_user(queue, key):
    """Drop the index of the user ``key`` (deleted: a new account of that id must not see them)."""
    index = queue.by_user
    if index is not None and key in index:
        del index[key]


def unindex_unloadable(queue, job_id, job):
    """Take a job that cannot be loaded (setaside.py) out of the indexes of ``queue``, by its id.

    Its index keys are not known without loading it: every inner tree is
    looked at, so this is for the rare job removed while it cannot be loaded.
    """
    key = newest_first_key_of(job_id)
    for name in ("by_user", "by_item", "by_site"):
        index = getattr(queue, name)
        for outer, jobs in list((index or {}).items()):
            if jobs.get(key) is job:
                del jobs[key]
                if not jobs:
                    del index[outer]


def build_indexes(root, site=None):
    """Index every job the queues hold (for databases written before an index); return how many.

    Jobs queued before they recorded their item's database are indexed by
    item if they are of ``site``, with the database of ``site`` (the upgrade
    step of each site indexes its own). The index by content oid of earlier
    versions goes.
    """
    count = 0
    site_path = path_of(site) if site is not None else None
    database = site._p_jar.db().database_name if site is not None else None
    for queue in root.queues.values():
        if getattr(queue, "by_content", None) is not None:
            del queue.by_content
        for job in queue.jobs.values():
            if job.parent is None or not job.parent.batch_kind:  # a batch is listed, not its parts
                if job.site_path == site_path:
                    for prefix in ("context_", "about_"):
                        if getattr(job, prefix + "oid") is not None and getattr(job, prefix + "database") is None:
                            setattr(job, prefix + "database", database)
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


def _listing(root, name, key, wanted):
    trees = []
    for queue in root.queues.values():
        index = getattr(queue, name)
        tree = index.get(key) if index is not None and key is not None else None
        if tree is not None:
            trees.append(tree)
    # Not filed yet: newer than the filed ones. One filed meanwhile is shown once.
    seen = set()
    for job in itertools.chain(_unfiled(root, wanted), _merged(trees)):
        if load_error(job) is not None:
            continue  # set aside (setaside.py): listed in the control panel only
        if job.id not in seen and wanted(job):
            seen.add(job.id)
            yield job


def jobs_of_user(root, userfolder_path, user_id, site_path=None):
    """The jobs queued by that user (in the site ``site_path``, if given), newest first, lazily (slice it).

    A user of the Zope root queues jobs in several sites: each site lists its own.
    """
    key = (userfolder_path, user_id)
    return _listing(root, "by_user", key, lambda job: user_key(job) == key and (
        site_path is None or job.site_path == site_path))


def jobs_of_content(root, obj):
    """The jobs that belong to content item ``obj``, newest first, lazily (slice it)."""
    key = stored_item_key(obj)
    return _listing(root, "by_item", key, lambda job: key is not None and item_key(job) == key)


def jobs_of_site(queue, site_path):
    """The filed jobs of ``queue`` queued in the site ``site_path``, newest first, lazily."""
    index = queue.by_site
    tree = index.get(site_path) if index is not None else None
    return iter(tree.values()) if tree is not None else iter(())


def holds_other_sites(queue, site_path, looked_at=UNFILED_LOOKED_AT):
    """True if ``queue`` holds jobs of another site than ``site_path`` (its counters count them too).

    Filed jobs by the site index (a database from before it, until its upgrade
    step: False), jobs not filed yet by the first ``looked_at`` of them.
    """
    index = queue.by_site
    if index is not None and any(key != site_path for key in index.keys()):
        return True
    unfiled = (job for inbox in queue.inboxes.values() for _key, job in inbox.unread(looked_at))
    return any(job.site_path != site_path for job in itertools.islice(unfiled, looked_at))
