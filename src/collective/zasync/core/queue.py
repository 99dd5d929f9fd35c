"""The queue database's schema: QueueRoot and Queue, and every tree they hold. Add-ons may
read ``IQueue`` (interfaces.py); the rest is the package's.

Every structure has one kind of writer, so that nothing needs conflict resolution beyond
the stock one of BTrees (which a ZEO server without this package does). Each attribute is
declared here, on its class (``None`` until first used for those made on first use, by
``core.trees.made``); no other module adds one.

QueueRoot (``root[interfaces.KEY]`` of the queue database, ``get_queue_root``):

================= ================================ ======================================= ======================================
attribute         type                             who writes it                           when it is emptied
================= ================================ ======================================= ======================================
queues            OOBTree name -> Queue            create_queue (the service, zasync.xml)   never: queues are not removed
workers           OOBTree uuid -> WorkerRecord     each worker its own entry; a worker      its entry when the worker stops or is
                                                   declaring another dead deletes that one  declared dead
layout            int                              migration                                -
retention_days    int or None                      the site setting (plone/settings.py)     -
blocked           OOBTree "dep id job id" -> job   the finisher (file_or_block); a cancel   an entry when its dependency finishes
cancel_requests   OOBTree job id -> (user, when,   a request that cancels a running job     when the job is filed finished, run
                  job)                                                                      again or removed; stale ones daily
set_aside         OOBTree oid -> (job, error,      dispatchers (setaside.py)                when an administrator retries or
                  when, where, job id)                                                      removes the job
alone_gate        AloneGate                        a job thread out of conflict retries;    its entries when claimed, or ended
                                                   claims (alonegate.py)
profile_recurring OOBTree "site name" ->           zasync.xml's import                      when zasync.xml removes the job
                  Recurrence
================= ================================ ======================================= ======================================

Queue (``root.queues[name]``):

================= ================================ ======================================= ======================================
attribute         type                             who writes it                           when it is emptied
================= ================================ ======================================= ======================================
name              str                              create_queue                            -
concurrency       int or None                      create_queue; the default queue's: the  -
                                                   site setting
quotas            OOBTree name -> size             add-on code, zasync.xml                 by whoever set them
limit_mark        LimitMark                        every claim under a limit               -
_rate_limits      RateLimits                       set_rate_limit (ratelimits.py)          -
inboxes           OOBTree writer -> JobLog         each writer its own (Queue.put); the     an inbox once read and idle
                                                   finisher reads them                      (IDLE_INBOX): retention
inbox_count       Length                           when an inbox is added or retired       -
waiting           OOBTree waiting key -> job       the finisher (file_waiting, drop_taken); as jobs are claimed
                  (priority 0)                     claims; a cancel
prioritized       OOBTree priority -> OOBTree      as waiting, for other priorities        as waiting
waiting_count     Length                           as waiting                              -
waiting_added     Length                           file_waiting: jobs added to waiting     -
                                                   (a change wakes hungry dispatchers)
completed, failed OOBTree finished key -> job      the finisher (file_finished)            retention; an administrator's remove
completed_count,  Length                           as completed, failed                    -
failed_count
jobs              OOBTree job id -> job            the finisher (file_new)                 retention; remove
batches           OOBTree job id -> batch          the finisher (lifecycle.start_batch)    when the batch finishes
unique            OOBTree entry -> job             the queueing request (Queue.put)        when the job is filed finished
recurring         OOBTree id -> Recurrence         the finisher (file_new)                 when the recurrence is cancelled
by_uid            OOBTree "uid job id" -> job      the finisher (uidindex.py)              when the job is filed finished
ended_unfiled     OOTreeSet of job ids             a cancel (lifecycle.end_unstarted) of a  when the finisher reads the job in
                                                   job still in its inbox                   its inbox (lifecycle.forget_ended)
by_user, by_item, OOBTree key -> OOBTree of jobs   the finisher (indexes.py); remove       retention; a deleted user's at once
by_site
totals            Totals                           retention; remove; retry                never: counters
================= ================================ ======================================= ======================================

An inbox's entries (each a job and its filing card: cards.py) and its ``uids`` are written by its one writer, its read mark by
dispatchers only (joblog.py); a WorkerRecord by its own worker (records.py).
"""

from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from collective.zasync import interfaces
from collective.zasync.core.cards import card_of
from collective.zasync.core.job import new_job_id
from collective.zasync.core.joblog import JobLog
from collective.zasync.core.notifications import notify_after_commit
from collective.zasync.core.priority import waiting_jobs
from collective.zasync.core.ratelimits import RateLimits
from collective.zasync.core.uidindex import note_queued
from collective.zasync.defaults import DEFAULT_QUEUE_CONCURRENCY
from persistent import Persistent
from zope.component import queryUtility
from zope.interface import implementer

import os
import socket
import uuid


LAYOUT = 5  # version of the structures; migration.py brings older ones here

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


def check_concurrency(concurrency):
    """Raise unless ``concurrency`` is None (no limit) or a whole number of at least 1."""
    if concurrency is not None and (not isinstance(concurrency, int) or isinstance(concurrency, bool)
                                    or concurrency < 1):
        raise ValueError("A queue's concurrency is a whole number of at least 1 (or None: no "
                         "limit), not %r." % (concurrency,))


class LimitMark(Persistent):
    """Written by every claim of a job that a limit applies to (the queue's
    concurrency, a quota): two dispatchers claiming such jobs at once then
    conflict, and the one that retries counts the other's claim. No
    conflict resolution on purpose."""

    claims = 0


@implementer(interfaces.IQueue)
class Queue(Persistent):
    """A named queue of jobs (its attributes: the module's table)."""

    concurrency = None
    inboxes = None  # None: a queue of 1.0.0a1, not migrated yet (migration.py)
    prioritized = None
    _rate_limits = None
    by_uid = None
    ended_unfiled = None
    by_user = None
    by_item = None
    by_site = None
    totals = None
    waiting_added = None  # (layout 5; migration.py)

    # What a new queue holds (the table): trees, and their counters (inbox_count changes when an
    # inbox is added: it wakes the dispatchers).
    TREES = ("inboxes", "waiting", "completed", "failed", "jobs", "batches", "unique", "quotas",
             "recurring", "by_uid")
    COUNTERS = ("inbox_count", "waiting_count", "waiting_added", "completed_count", "failed_count")

    def __init__(self, name, concurrency=None):
        self.name = name
        self.concurrency = concurrency
        self.limit_mark = LimitMark()
        for tree in self.TREES:
            setattr(self, tree, OOBTree())
        for counter in self.COUNTERS:
            setattr(self, counter, Length())

    def __repr__(self):
        return "<Queue %r>" % self.name

    def __len__(self):
        """Jobs queued and not claimed yet (due or delayed); a claimed job counts until the finisher files it."""
        return self.waiting_count() + sum(log.unread_count() for log in self.inboxes.values())

    def put(self, job):
        """Queue a NEW job; it runs after the current transaction commits."""
        if job.status != interfaces.NEW:
            raise ValueError("Job %s is %s; only a new job can be queued." % (job.id, job.status))
        if self.inboxes is None:
            raise ValueError("Queue %r is of an earlier layout: queue jobs with the service (it "
                             "migrates the database), or start a worker first." % self.name)
        check_quotas(self, job.quota_names)
        job.queue_name = self.name
        job.status = interfaces.PENDING
        log = self._inbox()
        # A job's id is its key, unless the clock went back (or a retried job
        # comes again): keys of one inbox must increase.
        key = job.id if job.id > log.last_key else max(new_job_id(), log.last_key + "0")
        log.append(key, job, card_of(job, key))  # what filing it takes, so that it is filed unloaded
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
        yield from waiting_jobs(self)
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
    """The container in the root of the queue database: queues and workers (the module's table)."""

    layout = 1  # databases from before the layout was recorded
    retention_days = None  # None: the workers' own
    blocked = None
    cancel_requests = None
    set_aside = None
    alone_gate = None
    profile_recurring = None

    def __init__(self):
        self.queues = OOBTree()
        # plone.app.async's default: the default queue runs one job at a time, in order.
        self.queues[""] = Queue("", concurrency=DEFAULT_QUEUE_CONCURRENCY)
        self.workers = OOBTree()
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


def queue_connection(connection):
    """The connection to the queue database, from any connection of the site."""
    setting = queryUtility(interfaces.IQueueDatabase)
    if setting is None or setting.name == connection.db().database_name:
        return connection
    return connection.get_connection(setting.name)


def get_queue_root(connection, create=True):
    """The QueueRoot of the database behind ``connection`` (created if asked; else None if missing).

    The one way to it: from a request (``context._p_jar``), a worker's connection, or a
    stored object of the queue database (``job._p_jar``).
    """
    conn = queue_connection(connection)
    root = conn.root()
    container = root.get(interfaces.KEY)
    if container is None and create:
        container = root[interfaces.KEY] = QueueRoot()
    return container
