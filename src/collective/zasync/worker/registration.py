"""A worker's record in the queue database: register, ping, declare silent workers dead,
unregister. Not for add-ons. Every function works in the dispatcher's transaction.
"""

from collective.zasync.core.job import utcnow
from collective.zasync.core.migration import migrate
from collective.zasync.core.records import WorkerRecord
from collective.zasync.worker import filing
from collective.zasync.worker.transactions import Superseded

import logging


log = logging.getLogger("collective.zasync")


class WorkerIdentityInUse(RuntimeError):
    """Another live process runs with this worker's identity (its UUID)."""


class Identity:
    """Who a dispatcher is: its worker's ``uuid``, and its ``incarnation`` (this start of
    it, written on its record: a record with another one was written by another process)."""

    def __init__(self, uuid, incarnation, settings):
        self.uuid = uuid
        self.incarnation = incarnation
        self.settings = settings


def register(root, me):
    """Record worker ``me`` (an Identity) as started; take back what its last run left."""
    migrate(root)
    previous = root.workers.get(me.uuid)
    if previous is not None and previous.is_alive() and previous.runs_elsewhere():
        raise WorkerIdentityInUse(
            "Worker %s is running already: on %s, pid %s, which pinged %s. Two processes with "
            "one identity would run the same jobs twice. Give each worker an identity of its "
            "own (ZASYNC_UUID, one file or value per worker, or per container replica), or "
            "stop the other one first." % (me.uuid, previous.host, previous.pid, previous.last_ping)
        )
    if previous is not None:
        # This worker restarted: what it had claimed was interrupted, what
        # it finished (committed) was not filed yet.
        filing.take_back(root, previous)
    record = root.workers[me.uuid] = WorkerRecord(
        me.uuid, me.settings.threads, me.settings.death_interval, me.incarnation
    )
    return record


def mine(root, me):
    """The record of ``me``; None if it has none; Superseded if another process's is there."""
    record = root.workers.get(me.uuid)
    if record is not None and not record.belongs_to(me.incarnation):
        raise Superseded(
            "Worker %s was declared dead while it was cut off or frozen, and another process "
            "(on %s, pid %s) runs with its identity now: this one stops running jobs. Restart "
            "this process once the other one has stopped, or give it an identity of its own."
            % (me.uuid, record.host, record.pid))
    return record


def mine_or_again(root, me):
    """The record of ``me``; registered again if another worker declared it dead meanwhile."""
    record = mine(root, me)
    if record is None:  # declared dead by another worker while we were cut off
        log.warning("Worker %s was declared dead while alive; registering again.", me.uuid)
        record = register(root, me)
    return record


def ping(root, me):
    mine_or_again(root, me).ping.time = utcnow()


def reap(root, me):
    """Declare dead the workers silent for a death interval; their jobs go back. Return how many jobs."""
    count = 0
    for uuid, record in list(root.workers.items()):
        if uuid == me.uuid or record.is_alive(me.settings.death_interval):
            continue
        jobs = filing.take_back(root, record)
        log.warning(
            "Worker %s (%s, pid %s) silent since %s: declared dead; %d job(s) go back to the queue.",
            uuid, record.host, record.pid, record.last_ping, len(jobs),
        )
        del root.workers[uuid]
        count += len(jobs)
    return count
