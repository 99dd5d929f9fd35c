"""Where jobs wait and end: the queues, their structures and keys.

Who writes what, so that nothing needs conflict resolution beyond the stock
one of BTrees (which a ZEO server without this package does):

- a request appends a job to its own inbox, a JobLog that only its database
  connection writes (``queue.inboxes``, one per writer); nothing else;
- the dispatchers of the workers file inboxes into ``waiting`` (keyed by when
  a job is due), claim from it, and file finished jobs into ``completed`` /
  ``failed`` (keyed newest first); two dispatchers doing the same thing get a
  ConflictError that they retry among themselves;
- a worker's job thread writes its job and its own JobLog of finished jobs.

This module owns the structures and their keys: every other module files,
unfiles and looks up jobs through the functions here.
"""

from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from collective.zasync import interfaces
from collective.zasync.indexes import unindex_job
from collective.zasync.indexes import unindex_unloadable
from collective.zasync.joblog import JobLog
from collective.zasync.legacy import JobList  # noqa: F401 (databases of 1.0.0a1 name it here)
from collective.zasync.job import new_job_id
from collective.zasync.uidindex import index_filed
from collective.zasync.uidindex import note_queued
from collective.zasync.uidindex import unindex_finished
from collective.zasync.pgnotify import notify_after_commit
from collective.zasync.priority import priority_of
from collective.zasync.priority import tree_for
from collective.zasync.priority import waiting_trees
from collective.zasync.ratelimits import RateLimits
from collective.zasync.setaside import load_error
from collective.zasync.totals import count_left
from persistent import Persistent
from zope.component import queryUtility
from zope.interface import implementer

import itertools
import os
import socket
import time
import uuid


LAYOUT = 4  # version of the structures; migration.py brings older ones here
FAR_FUTURE_US = 10**17  # finished keys count down from here: newest first
RETENTION_BATCH = 200  # finished jobs removed per transaction
IDLE_INBOX = 3600.0  # seconds after which a read inbox is retired
DEFAULT_QUEUE_CONCURRENCY = 1  # jobs of the default queue run at once (a site setting)


# -- keys -----------------------------------------------------------------------------


def waiting_key(job):
    """The ``waiting`` key: when the job is due (microseconds since 1970), its id, its claim token.

    A job is due at its begin_after, or when it was queued: so a delayed job
    that has become due is not passed by the jobs queued after that moment.
    A job given back after a claim (its claim token changed) is filed under a
    new key: the entry its claim left (filing.drop_taken) is never taken for
    it, and deleting that old entry cannot undo the filing (two commits that
    wrote different keys: both count).
    """
    when = job.queued if job.begin_after is None else max(job.begin_after, job.queued)
    key = "%016d.%s" % (int(when.timestamp() * 1_000_000), job.id)
    return key if not job.claim_token else "%s.%d" % (key, job.claim_token)


def due_key(timestamp):
    """A key above every ``waiting`` key due at ``timestamp`` (seconds since 1970)."""
    return "%016d/" % int(timestamp * 1_000_000)


def due_time(key):
    """The time (seconds since 1970) a ``waiting`` key is due."""
    return int(key.split(".", 1)[0]) / 1_000_000


def finished_key(job):
    """The completed/failed key: newest first, then id."""
    return finished_key_at(job.ended.timestamp(), job.id)


def finished_key_at(timestamp, job_id=""):
    return "%017d.%s" % (FAR_FUTURE_US - int(timestamp * 1_000_000), job_id)


# -- who writes an inbox ------------------------------------------------------------------

_process = {"pid": None, "token": None}


def writer_id(connection):
    """The one writer of an inbox: a database connection of this process.

    A connection serves one transaction at a time, so two commits never
    append to the same inbox at once. A forked process gets a new token.
    """
    pid = os.getpid()
    if _process["pid"] != pid:
        _process.update(pid=pid, token=uuid.uuid4().hex[:8])
    return "%s:%d:%s:%x" % (socket.gethostname(), pid, _process["token"], id(connection))


def unique_entry_of(job):
    """The key of a unique job in ``queue.unique`` (jobs queued before keys were scoped: their key)."""
    return job.unique_entry or job.unique_key


def check_quotas(queue, quota_names):
    """``quota_names`` as a tuple, if it is a tuple (or list) of quotas of ``queue``; else raise."""
    if isinstance(quota_names, str) or not isinstance(quota_names, (tuple, list)):
        raise TypeError("quota_names must be a tuple of names, not %r." % (quota_names,))
    for name in quota_names:
        if name not in queue.quotas and queue._rate_limits is not None and name in queue._rate_limits:
            continue  # a rate limit alone: no limit on how many run at once
        if name not in queue.quotas:
            raise ValueError(
                "Queue %r has no quota %r; create it first with "
                "queue.quotas[%r] = size." % (queue.name, name, name)
            )
        size = queue.quotas[name]
        if not isinstance(size, int) or isinstance(size, bool):
            raise ValueError("Quota %r of queue %r has the size %r: set a whole number, "
                             "queue.quotas[%r] = 2." % (name, queue.name, size, name))
    return tuple(quota_names)


class LimitMark(Persistent):
    """Written by every claim of a job that a limit applies to (the queue's
    concurrency, a quota): two dispatchers claiming such jobs at once then
    conflict, and the one that retries counts the other's claim. No
    conflict resolution on purpose."""

    claims = 0


@implementer(interfaces.IQueue)
class Queue(Persistent):
    """A named queue of jobs."""

    concurrency = None  # jobs of this queue that may run at once; None: no limit
    prioritized = None  # priority -> waiting BTree, for priorities other than 0 (priority.py)
    _rate_limits = None  # a RateLimits, once a rate limit was set (ratelimits.py)

    def __init__(self, name, concurrency=None):
        self.name = name
        self.concurrency = concurrency
        self.limit_mark = LimitMark()
        self.inboxes = OOBTree()  # writer_id -> JobLog; written by that writer only
        self.inbox_count = Length()  # changes when an inbox is added: wakes the dispatchers
        self.waiting = OOBTree()  # waiting_key -> job: queued, not claimed (due or delayed)
        self.waiting_count = Length()
        self.completed = OOBTree()  # finished_key -> job
        self.failed = OOBTree()  # finished_key -> job
        self.completed_count = Length()
        self.failed_count = Length()
        self.jobs = OOBTree()  # job id -> job, for every filed job
        self.batches = OOBTree()  # job id -> running serial/parallel batch
        self.unique = OOBTree()  # unique_key -> job, while it is not finished
        self.quotas = OOBTree()  # quota name -> size
        self.recurring = OOBTree()  # recurrence id -> Recurrence, until cancelled
        self.by_uid = OOBTree()  # "uid job-id" -> filed unfinished job (uidindex.py)

    def __repr__(self):
        return "<Queue %r>" % self.name

    def __len__(self):
        """Jobs queued and not claimed yet (due or delayed); a claimed job counts until the finisher files it."""
        return self.waiting_count() + sum(log.unread_count() for log in self.inboxes.values())

    def put(self, job):
        """Queue a NEW job; it runs after the current transaction commits."""
        if job.status != interfaces.NEW:
            raise ValueError("Job %s is %s; only a new job can be queued." % (job.id, job.status))
        check_quotas(self, job.quota_names)
        if getattr(self, "inboxes", None) is None:  # a database of 1.0.0a1, no worker started since
            from collective.zasync.migration import migrate

            migrate(get_queue_root(self._p_jar))
        job.queue_name = self.name
        job.status = interfaces.PENDING
        log = self._inbox()
        # A job's id is its key, unless the clock went back (or a retried job
        # comes again): keys of one inbox must increase.
        key = job.id if job.id > log.last_key else max(new_job_id(), log.last_key + "0")
        log.append(key, job)
        note_queued(log, key, job)  # found by its content's UID while unfiled
        # RelStorage pushes nothing: PostgreSQL tells the workers, once this commits.
        notify_after_commit(self._p_jar.transaction_manager.get(), self._p_jar.db(), "queued")
        if job.unique_key is not None:
            # Two requests queueing the same key both write this entry: one
            # of them gets a ConflictError, and its retry finds the other's job.
            self.unique[unique_entry_of(job)] = job
        return job

    def _inbox(self):
        """The inbox of the connection this queue was loaded in (created on first use)."""
        if self._p_jar is None:
            raise ValueError("Queue %r is not stored yet: add it to the database first." % self.name)
        writer = writer_id(self._p_jar)
        log = self.inboxes.get(writer)
        if log is None or log.closed:
            log = self.inboxes[writer] = JobLog(writer)
            self.inbox_count.change(1)
        return log

    @property
    def rate_limits(self):
        """Quota name -> (count, timedelta): at most count starts per window (ratelimits.py)."""
        if self._rate_limits is None:
            return RateLimits(owner=self)  # stored on the queue when first set
        return self._rate_limits

    def set_rate_limit(self, name, count, per=60):
        """At most ``count`` starts of jobs naming ``name`` per ``per`` (seconds or a
        timedelta), over all workers; ``count`` None or 0 removes the limit."""
        if not count:
            self.rate_limits.pop(name, None)
        else:
            self.rate_limits[name] = (count, per)

    def pending(self):
        """Jobs queued and not claimed yet, in the order they will be claimed (due ones by priority)."""
        for _priority, tree in waiting_trees(self):
            yield from (job for key, job in tree.items() if waits(key, job))
        for log in self.inboxes.values():
            for _key, job in log.unread():
                yield job

    def finished(self, failed=False):
        """Finished jobs, newest first."""
        return iter((self.failed if failed else self.completed).values())

    def get(self, job_id):
        """The job with that id (queued, running or finished while kept), or None."""
        job = self.jobs.get(job_id)
        if job is None:
            for log in self.inboxes.values():
                job = log.get_unread(job_id)
                if job is not None:
                    break
        return job

    def find_unique(self, unique_key):
        """The unfinished job queued with that unique_key, or None."""
        job = self.unique.get(unique_key)
        if job is not None and job.status != interfaces.COMPLETED:
            return job
        return None


class QueueRoot(Persistent):
    """The container in the root of the queue database: queues and workers."""

    layout = 1  # databases from before the layout was recorded
    blocked = None  # "<dependency id> <job id>" -> job waiting for it (dependencies.py)
    retention_days = None  # a site's setting (control panel); None: the workers' own

    def __init__(self):
        self.queues = OOBTree()
        # plone.app.async's default: the default queue runs one job at a time, in order.
        self.queues[""] = Queue("", concurrency=DEFAULT_QUEUE_CONCURRENCY)
        self.workers = OOBTree()  # uuid -> WorkerRecord
        self.layout = LAYOUT

    def create_queue(self, name, concurrency=None):
        if not isinstance(name, str):
            raise TypeError("A queue name is a string, not %r." % (name,))
        check_concurrency(concurrency)
        if name not in self.queues:
            queue = self.queues[name] = Queue(name, concurrency)
            if self._p_jar is not None:  # jobs can be queued in it before the commit
                self._p_jar.add(queue)
        elif concurrency is not None:
            self.queues[name].concurrency = concurrency
        return self.queues[name]


def check_concurrency(concurrency):
    """Raise unless ``concurrency`` is None (no limit) or a whole number of at least 1."""
    if concurrency is not None and (not isinstance(concurrency, int) or isinstance(concurrency, bool)
                                    or concurrency < 1):
        raise ValueError("A queue's concurrency is a whole number of at least 1 (or None: no "
                         "limit), not %r." % (concurrency,))


def queue_connection(connection):
    """The connection to the queue database, from any connection of the site."""
    setting = queryUtility(interfaces.IQueueDatabase)
    if setting is None or setting.name == connection.db().database_name:
        return connection
    return connection.get_connection(setting.name)


def get_queue_root(connection, create=True):
    """The QueueRoot of the database behind ``connection`` (created if asked)."""
    conn = queue_connection(connection)
    root = conn.root()
    container = root.get(interfaces.KEY)
    if container is None and create:
        container = root[interfaces.KEY] = QueueRoot()
    return container


# -- filing (dispatchers, admin actions) ---------------------------------------------------


def timed_out(job, now):
    """True if the job had to start by begin_after + begin_by, and it is later."""
    if job.begin_by is None:
        return False
    return (job.begin_after or job.queued) + job.begin_by < now


def file_waiting(queue, job):
    """Put ``job`` among the waiting jobs of ``queue``."""
    if job.status not in (interfaces.PENDING, interfaces.CALLBACKS):
        job.status = interfaces.PENDING
    tree = tree_for(queue, priority_of(job), create=True)
    key = waiting_key(job)
    if tree.get(key) is not job:  # else its entry is still there, claimed and given back since
        tree[key] = job
        queue.waiting_count.change(1)
    index_filed(queue, job)


def waits(key, job):
    """True if the ``waiting`` entry ``key`` -> ``job`` is a job to claim.

    Only one dispatcher deletes claimed entries (filing.drop_taken): the
    others' claims leave theirs for it, which they pass over meanwhile.
    """
    return (job.worker_uuid is None and job.status in (interfaces.PENDING, interfaces.CALLBACKS)
            and key == waiting_key(job))


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


def _finished_tree(queue, job):
    if job.failed:
        return queue.failed, queue.failed_count
    return queue.completed, queue.completed_count


def file_finished(queue, job):
    tree, length = _finished_tree(queue, job)
    tree[finished_key(job)] = job
    length.change(1)
    if queue.jobs.get(job.id) is not job:  # setting it again would write its bucket all the same
        queue.jobs[job.id] = job
    unindex_finished(queue, job)
    if job.unique_key is not None and queue.unique.get(unique_entry_of(job)) is job:
        del queue.unique[unique_entry_of(job)]
    forget_cancel_request(queue, job)
    from collective.zasync.dependencies import release_dependents  # (it imports this module)

    release_dependents(queue, job)


def forget_cancel_request(queue, job):
    """A finished job needs no request to stop any more (one it never checked, say)."""
    root = queue._p_jar.root().get(interfaces.KEY) if queue._p_jar is not None else None
    requests = getattr(root, "cancel_requests", None)
    if requests is not None and job.id in requests:
        del requests[job.id]


def unfile_finished(queue, job):
    """Take a finished job out of the completed/failed BTree it is filed in."""
    tree, length = _finished_tree(queue, job)
    if tree.pop(finished_key(job), None) is not None:
        length.change(-1)
        count_left(queue, job.failed)  # the metrics' totals never go down
        return True
    return False


def is_filed_finished(queue, job):
    return finished_key(job) in _finished_tree(queue, job)[0]


def requeue(root, job):
    """Give a job claimed by a dead (or stopping) worker back to its queue."""
    record = root.workers.get(job.worker_uuid)
    if record is not None:
        record.claimed.pop(job.id, None)
    job.release()
    if job.status in (interfaces.PENDING, interfaces.CALLBACKS):
        file_waiting(root.queues[job.queue_name], job)


def retire_idle_inboxes(queue, now):
    """Drop inboxes that were read to the end and are idle; return how many.

    Writing ``closed`` makes a writer that appends at this very moment
    conflict with us instead of appending to a dropped log.
    """
    retired = 0
    for writer, log in list(queue.inboxes.items()):
        if log.unread_count() or log.written is None:
            continue
        if (now - log.written).total_seconds() > IDLE_INBOX:
            log.closed = True
            del queue.inboxes[writer]
            queue.inbox_count.change(-1)
            retired += 1
    return retired


def forget_finished(queue, key, job):
    """A finished job, taken out of its tree at ``key``, is removed: from the jobs and the indexes."""
    job_id = key.split(".", 1)[1]
    if queue.jobs.get(job_id) is job:
        del queue.jobs[job_id]
    if load_error(job) is None:
        unindex_job(queue, job)
    else:  # (its pickle no longer loads: setaside.py)
        unindex_unloadable(queue, job_id, job)


def remove_old_jobs(root, default_days):
    """Remove up to RETENTION_BATCH finished jobs older than the retention."""
    days = root.retention_days if root.retention_days is not None else default_days
    first_key = finished_key_at(time.time() - days * 86400)
    count = 0
    for queue in root.queues.values():
        for tree, length in ((queue.completed, queue.completed_count), (queue.failed, queue.failed_count)):
            # Only the keys of this batch are read: a backlog of a million
            # expired jobs costs no more per transaction than one of 200.
            keys = list(itertools.islice(tree.keys(min=first_key), RETENTION_BATCH - count))
            for key in keys:
                forget_finished(queue, key, tree.pop(key))
            length.change(-len(keys))
            count_left(queue, tree is queue.failed, len(keys))
            count += len(keys)
    return count
