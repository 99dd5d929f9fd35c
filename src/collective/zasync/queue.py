"""Where jobs wait: the queue container, the queues and their structures.

Who writes what (this is what keeps conflicts rare):

- requests only append to ``queue.inbox``, a JobList whose concurrent appends
  are merged by ``_p_resolveConflict`` (on the ZEO server): queueing never
  raises ConflictError however many requests queue at once;
- the dispatcher of a worker moves the inbox into the ``pending_jobs`` BTree
  (ordered by begin_after), claims from it, and files finished jobs into the
  ``completed`` / ``failed`` BTrees;
- a worker thread writes its job and its worker's ``active`` and ``done``
  JobLists (merged like the inbox); the worker's dispatcher files its own
  ``done`` jobs, so two workers never file the same job.
"""

from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from collective.zasync import interfaces
from persistent import Persistent
from zope.interface import implementer

import itertools
import time


def _ref_key(ref):
    """Identity of an item in conflict resolution (a PersistentReference)."""
    # PersistentReference refuses == between different references, so
    # compare what identifies them instead.
    return (getattr(ref, "database_name", None), getattr(ref, "oid", ref))


class JobList(Persistent):
    """An ordered set of jobs that concurrent transactions may append to.

    Kept small by design (drained by the dispatcher), so its whole state is
    one list. Conflicting appends and removals are merged on commit.
    """

    def __init__(self):
        self._items = []

    def __setstate__(self, state):
        # Databases written by the first development versions kept a tuple.
        super().__setstate__(dict(state, _items=list(state.get("_items", ()))))

    def append(self, job):
        self._items.append(job)
        self._p_changed = True

    def remove(self, job):
        items = [item for item in self._items if item is not job]
        if len(items) != len(self._items):
            self._items = items

    def take(self):
        """Remove and return every job, oldest first."""
        items = self._items
        if items:  # writing an empty list would wake every worker for nothing
            self._items = []
        return list(items)

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __contains__(self, job):
        return any(item is job for item in self._items)

    def _p_resolveConflict(self, old, committed, new):
        old_items = old["_items"]
        old_keys = {_ref_key(ref) for ref in old_items}
        committed_keys = {_ref_key(ref) for ref in committed["_items"]}
        new_keys = {_ref_key(ref) for ref in new["_items"]}
        removed = (old_keys - committed_keys) | (old_keys - new_keys)
        merged = [ref for ref in old_items if _ref_key(ref) not in removed]
        seen = {_ref_key(ref) for ref in merged} | removed
        for ref in list(committed["_items"]) + list(new["_items"]):
            key = _ref_key(ref)
            if key not in seen:
                seen.add(key)
                merged.append(ref)
        state = dict(new)
        state["_items"] = merged
        return state


def pending_key(job):
    """The pending_jobs key: when the job is due (microseconds since 1970), then id.

    A job is due at its begin_after, or when it was queued: so a delayed job
    that has become due is not passed by the jobs queued after that moment.
    """
    when = job.queued if job.begin_after is None else max(job.begin_after, job.queued)
    return "%016d.%s" % (int(when.timestamp() * 1_000_000), job.id)


def due_time(key):
    """The time (seconds since 1970) a pending_jobs key is due."""
    return int(key.split(".", 1)[0]) / 1_000_000


def due_key(timestamp):
    """A key above every pending_jobs key due at ``timestamp``."""
    return "%016d/" % int(timestamp * 1_000_000)


# Finished jobs are keyed by inverted end time, so that iterating a BTree
# (which only goes forward) gives the newest first, as the control panel
# shows them; retention deletes from the far end.
FAR_FUTURE_US = 10**17


def finished_key(job):
    """The completed/failed key: newest first, then id."""
    return finished_key_at(job.ended.timestamp(), job.id)


def finished_key_at(timestamp, job_id=""):
    return "%017d.%s" % (FAR_FUTURE_US - int(timestamp * 1_000_000), job_id)


@implementer(interfaces.IQueue)
class Queue(Persistent):
    """A named queue of jobs."""

    def __init__(self, name):
        self.name = name
        self.inbox = JobList()  # appended by requests
        self.pending_jobs = OOBTree()  # pending_key -> job; dispatcher only
        self.pending_count = Length()
        self.done = JobList()  # finished jobs of workers declared dead, to file
        self.completed = OOBTree()  # finished_key -> job
        self.failed = OOBTree()  # finished_key -> job
        self.completed_count = Length()
        self.failed_count = Length()
        self.jobs = OOBTree()  # job id -> job, for every filed job
        self.batches = OOBTree()  # job id -> running serial/parallel batch
        self.unique = OOBTree()  # unique_key -> job, while it is not finished
        self.quotas = OOBTree()  # quota name -> size
        self.recurring = OOBTree()  # recurrence id -> Recurrence, until cancelled

    def __repr__(self):
        return "<Queue %r>" % self.name

    def __len__(self):
        return len(self.inbox) + self.pending_count()

    def put(self, job):
        """Queue a NEW job; it runs after the current transaction commits."""
        if job.status != interfaces.NEW:
            raise ValueError("Job %s is %s; only a new job can be queued." % (job.id, job.status))
        for name in job.quota_names:
            if name not in self.quotas:
                raise ValueError(
                    "Queue %r has no quota %r; create it first with "
                    "queue.quotas[%r] = size." % (self.name, name, name)
                )
        job.queue_name = self.name
        job.status = interfaces.PENDING
        self.inbox.append(job)
        return job

    def pending(self):
        """Pending jobs: the ones filed by a worker, then the inbox."""
        yield from self.pending_jobs.values()
        yield from self.inbox

    def finished(self, failed=False):
        """Finished jobs, newest first."""
        return iter((self.failed if failed else self.completed).values())

    def get(self, job_id):
        """The job with that id, or None."""
        job = self.jobs.get(job_id)
        if job is None:
            for candidate in self.inbox:
                if candidate.id == job_id:
                    return candidate
        return job

    def find_unique(self, unique_key):
        """The unfinished job queued with that unique_key, or None."""
        job = self.unique.get(unique_key)
        if job is not None and job.status != interfaces.COMPLETED:
            return job
        for candidate in self.inbox:
            if candidate.unique_key == unique_key:
                return candidate
        return None


class QueueRoot(Persistent):
    """The container in the root of the queue database: queues and workers."""

    def __init__(self):
        self.queues = OOBTree()
        self.queues[""] = Queue("")
        self.workers = OOBTree()  # uuid -> WorkerRecord

    retention_days = None  # a site's setting (control panel); None: the workers' own

    def create_queue(self, name):
        if not isinstance(name, str):
            raise TypeError("A queue name is a string, not %r." % (name,))
        if name not in self.queues:
            self.queues[name] = Queue(name)
        return self.queues[name]


def queue_connection(connection):
    """The connection to the queue database, from any connection of the site."""
    from collective.zasync.interfaces import IQueueDatabase
    from zope.component import queryUtility

    setting = queryUtility(IQueueDatabase)
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


# -- filing jobs (dispatcher, admin actions) ------------------------------------


def timed_out(job, now):
    """True if the job had to start by begin_after + begin_by, and it is later."""
    if job.begin_by is None:
        return False
    return (job.begin_after or job.queued) + job.begin_by < now


def file_pending(queue, job):
    """Put ``job`` among the pending jobs of ``queue``."""
    if job.status not in (interfaces.PENDING, interfaces.CALLBACKS):
        job.status = interfaces.PENDING
    queue.pending_jobs[pending_key(job)] = job
    queue.pending_count.change(1)


def unfile_pending(queue, job):
    """Take a pending job out of pending_jobs; False if it is not there."""
    # Databases of 1.0.0a1 keyed jobs without begin_after by 0 instead of
    # their queueing time.
    legacy = "%016d.%s" % (0, job.id)
    for key in (pending_key(job), legacy):
        if queue.pending_jobs.pop(key, None) is not None:
            queue.pending_count.change(-1)
            return True
    return False


def unfile_finished(queue, job):
    """Take a finished job out of the completed/failed BTree it is filed in."""
    tree, length = (queue.failed, queue.failed_count) if job.failed else (queue.completed, queue.completed_count)
    if tree.pop(finished_key(job), None) is not None:
        length.change(-1)


def file_finished(queue, job):
    if job.failed:
        queue.failed[finished_key(job)] = job
        queue.failed_count.change(1)
    else:
        queue.completed[finished_key(job)] = job
        queue.completed_count.change(1)


def requeue(root, job):
    """Give a job claimed by a dead (or stopping) worker back to its queue."""
    record = root.workers.get(job.worker_uuid)
    if record is not None:
        record.active.remove(job)
    job.worker_uuid = None
    job.claim_token += 1  # a late commit of the old claim will be refused
    if job.status == interfaces.ACTIVE:
        job.status = interfaces.PENDING
    if job.status in (interfaces.PENDING, interfaces.CALLBACKS):
        file_pending(root.queues[job.queue_name], job)


RETENTION_BATCH = 200  # finished jobs removed per transaction


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
                job = tree.pop(key)
                queue.jobs.pop(job.id, None)
                if job.unique_key is not None and queue.unique.get(job.unique_key) is job:
                    del queue.unique[job.unique_key]
            length.change(-len(keys))
            count += len(keys)
    return count
