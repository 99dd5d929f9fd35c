"""What the queue database records about each worker process.

A WorkerRecord is written by its own worker (its dispatcher: pings, claims;
each of its job threads: its own progress slot), so that no two processes
write one object, until another worker declares it dead and takes its jobs back.
Add-ons use ``IWorker``.
"""

from BTrees.OOBTree import OOBTree
from collective.zasync import interfaces
from collective.zasync.core.job import utcnow
from persistent import Persistent
from zope.interface import implementer

import os
import socket


class Ping(Persistent):
    """The last sign of life of a worker; written by that worker only."""

    def __init__(self):
        self.time = utcnow()


class Progress(Persistent):
    """What the job running in one worker thread said about its progress.

    One per thread, written only by that thread in its own small
    transactions, so reporting progress never conflicts with the job's work.
    """

    job_id = None
    claim_token = None
    value = 0
    data = None
    updated = None


@implementer(interfaces.IWorker)
class WorkerRecord(Persistent):
    """A worker process as the other workers (and the control panel) see it."""

    death_interval = 60.0  # seconds of silence after which it counts as dead
    finished = ()  # records of earlier versions: one JobLog of finished jobs per thread
    done = None  # JobLog of the jobs it completed, until a dispatcher files them (worker/filing.py)
    claims = 0  # jobs it claimed; every claim writes the record (worker/claiming.py)
    taken_back = None  # when its jobs were taken back (it stopped, or was declared dead)
    last_claim = None  # when it last claimed a job (seconds since 1970): worker/steering.py
    conflicting = None  # kind of job -> when its jobs last conflicted there (likewise)

    incarnation = None  # which start of the worker wrote it (Dispatcher.incarnation); None: earlier versions

    def __init__(self, uuid, threads, death_interval=60.0, incarnation=None):
        self.uuid = uuid
        self.incarnation = incarnation
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.threads = threads
        self.death_interval = death_interval
        self.started = utcnow()
        self.ping = Ping()
        self.claimed = OOBTree()  # job id -> job it claimed and has not filed as finished
        self.slots = tuple(Progress() for _ in range(threads))

    @property
    def last_ping(self):
        return self.ping.time

    def is_alive(self, death_interval=None):
        """True if it pinged within ``death_interval`` seconds (default: its own setting)."""
        interval = self.death_interval if death_interval is None else death_interval
        return (utcnow() - self.ping.time).total_seconds() < interval

    def belongs_to(self, incarnation):
        """True if the dispatcher started as ``incarnation`` wrote this record (or cannot tell)."""
        return self.incarnation is None or self.incarnation == incarnation

    def runs_elsewhere(self):
        """True if another live process may run with this worker's identity: one on another
        host, or one on this host with another pid that still runs."""
        if self.host != socket.gethostname():
            return True
        if self.pid == os.getpid():
            return False  # this process, or one before it with the same pid (a container's 1)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False  # gone: this worker restarted under its identity
        except PermissionError:
            return True  # running, as another user
        return True

    def unread_finished(self):
        """(log, pairs) for each thread's finished jobs not filed yet."""
        return [(log, log.unread()) for log in self.finished]

    def progress_of(self, job):
        """(value, data) that the thread running ``job`` reported; (0, None) if none."""
        for slot in self.slots:
            if slot.job_id == job.id and slot.claim_token == job.claim_token:
                return (slot.value, slot.data)
        return (0, None)

    def __repr__(self):
        return "<Worker %s on %s pid %s>" % (self.uuid, self.host, self.pid)
