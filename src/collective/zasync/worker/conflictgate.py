"""The conflict gate: a job that keeps conflicting runs alone among its process's jobs. Not for add-ons.

Across the cluster, a job out of conflict retries runs alone in the whole cluster:
core/alonegate.py.
"""

from collective.zasync.defaults import GATE_ALONE_AFTER
from collective.zasync.defaults import GATE_MAX_SECONDS
from collective.zasync.defaults import GATE_SERIAL_FOR
from collective.zasync.defaults import GATE_UNGROUP_FOR
from collective.zasync.defaults import GATE_WAIT

import contextlib
import threading
import time


class ConflictGate:
    """Lets a short job that keeps conflicting run alone among this process's jobs.

    Every attempt passes the gate: shared, as usual, or alone once it has hit
    ``alone_after`` ConflictErrors and its last attempt took less than
    ``max_seconds`` (a long job must not stop the others). An attempt alone
    waits for the running ones to end (at most ``wait`` seconds) and new ones
    wait for it, so it cannot conflict with a job of its own process; jobs of
    other processes still can. One gate per worker process.

    And jobs of one kind (their function) that conflict with each other run
    one at a time in this process for ``serial_for`` seconds after a short
    attempt of theirs conflicted (one_at_a_time): reindexing the same catalog
    from two threads conflicts over and over, one after the other it does not.
    Jobs of other kinds go on beside them; with no conflict nothing changes. Groups of jobs
    that share a commit (worker/grouping.py) are not made for a kind whose last group
    conflicted at its commit, for ``ungroup_for`` seconds: a conflict there re-runs them all.
    The kinds that conflicted, and when, are what the dispatcher tells the other processes
    (``recent_conflicts``; worker/steering.py).
    """

    def __init__(self, alone_after=GATE_ALONE_AFTER, max_seconds=GATE_MAX_SECONDS, wait=GATE_WAIT,
                 serial_for=GATE_SERIAL_FOR, ungroup_for=GATE_UNGROUP_FOR):
        self.alone_after = alone_after
        self.max_seconds = max_seconds
        self.wait = wait
        self.serial_for = serial_for
        self.ungroup_for = ungroup_for
        self._lock = threading.Condition()
        self._shared = 0
        self._alone = False
        self._serial = {}  # kind of job -> [its lock, until when (monotonic) its jobs take it]
        self._ungrouped = {}  # kind of job -> until when (monotonic) its jobs do not group
        self._conflicts = {}  # kind of job -> when (time.time()) a short attempt of it last conflicted

    def should_run_alone(self, conflicts, last_seconds):
        return conflicts >= self.alone_after and last_seconds < self.max_seconds

    def conflicted(self, kind, last_seconds):
        """An attempt of a job of ``kind`` conflicted after ``last_seconds``: if it was short,
        that kind's attempts run one at a time for the next ``serial_for`` seconds."""
        if kind is None or last_seconds >= self.max_seconds:
            return
        with self._lock:
            entry = self._serial.setdefault(kind, [threading.Lock(), 0.0])
            entry[1] = time.monotonic() + self.serial_for
            self._conflicts[kind] = time.time()

    def group_conflicted(self, kind):
        """A group of ``kind``'s jobs conflicted at its commit (worker/grouping.py): they do
        not group for the next ``ungroup_for`` seconds."""
        with self._lock:
            self._ungrouped[kind] = time.monotonic() + self.ungroup_for
            if kind is not None:
                self._conflicts[kind] = time.time()

    def recent_conflicts(self):
        """Kind -> when (seconds since 1970) a short attempt or a group of it last conflicted."""
        with self._lock:
            return dict(self._conflicts)

    def may_group(self, kind):
        """False while ``kind``'s groups conflict lately."""
        with self._lock:
            return self._ungrouped.get(kind, 0.0) <= time.monotonic()

    def forget(self):
        """Forget which kinds of jobs run one at a time (their windows end now)."""
        with self._lock:
            self._serial.clear()
            self._ungrouped.clear()
            self._conflicts.clear()

    @contextlib.contextmanager
    def one_at_a_time(self, kind):
        """Hold ``kind``'s lock for the block while its jobs conflict lately; else nothing."""
        with self._lock:
            entry = self._serial.get(kind)
            lock = entry[0] if entry is not None and entry[1] > time.monotonic() else None
        if lock is None:
            yield
            return
        with lock:
            yield

    @contextlib.contextmanager
    def shared(self):
        with self._lock:
            while self._alone:
                self._lock.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._lock:
                self._shared -= 1
                self._lock.notify_all()

    @contextlib.contextmanager
    def alone(self):
        with self._lock:
            while self._alone:
                self._lock.wait()
            self._alone = True
            deadline = time.monotonic() + self.wait
            while self._shared and deadline > time.monotonic():
                self._lock.wait(deadline - time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._alone = False
                self._lock.notify_all()
