"""Turns: while a worker process's jobs are short and keep its CPU busy, they take turns. Not
for add-ons.

Two job threads of one process never run Python at once (the GIL): for jobs that compute
(reindexing, rendering, a title change and its catalog), a second thread adds no speed, only
the cost of a second database connection, whose cache loads again every object the other
thread's commits changed (benchmarks, document jobs: 1.4 objects loaded per job with one
thread, 9.6 with two, and a third more CPU per job). So while this process's recent jobs were
short (under SHORT_JOB) and its CPU was busy while they ran (its CPU time near the time they
took), a job waits for its turn before it opens its connection: it then gets the connection
the job before it closed (ZODB's pool hands out the one used last), whose cache holds what that
job changed.

Jobs that wait (a web request, a mail server, a sleep) leave the CPU idle: they never take
turns, and run beside each other as before. A turn is waited for at most TURN_WAIT seconds, so
a job that runs long never holds up the others for longer. Nothing here changes what a job
commits or when it may start: only which thread runs it first, and on which connection.
"""

from collective.zasync.defaults import SHORT_JOB
from collective.zasync.defaults import TURN_BUSY
from collective.zasync.defaults import TURN_WAIT

import contextlib
import threading
import time


class Turns:
    """One per worker process, shared by its job threads."""

    def __init__(self, busy=TURN_BUSY, wait=TURN_WAIT, short=SHORT_JOB, weight=0.1):
        self.busy, self.wait, self.short, self.weight = busy, wait, short, weight
        self._turn = threading.Lock()
        self._lock = threading.Lock()  # (for the averages: job threads update them)
        self.cpu_share = 0.0  # moving average: the process's CPU seconds per second of a job
        self.seconds = None  # moving average: how long a job took
        # Runs that took their turn, that waited it out (``wait``), that took none (jobs did not
        # take turns): the worker's stop line says them (worker/dispatcher.py).
        self.counts = {"in turn": 0, "turn waited out": 0, "no turn": 0}

    def taken(self):
        """True while jobs take turns: recent ones were short and kept the CPU busy."""
        return self.seconds is not None and self.seconds < self.short and self.cpu_share >= self.busy

    @contextlib.contextmanager
    def turn(self):
        """Run the block (jobs, from before they open their connection) in its turn if jobs
        take turns (waiting at most ``wait`` seconds)."""
        taken = self.taken()
        held = taken and self._turn.acquire(timeout=self.wait)
        with self._lock:
            self.counts["in turn" if held else "turn waited out" if taken else "no turn"] += 1
        try:
            yield
        finally:
            if held:
                self._turn.release()

    @contextlib.contextmanager
    def measured(self):
        """Measure the block: one job (a turn may hold several: worker/grouping.py)."""
        began, cpu = time.monotonic(), time.process_time()
        try:
            yield
        finally:
            self.ran(time.monotonic() - began, time.process_time() - cpu)

    def ran(self, seconds, cpu_seconds):
        """A job took ``seconds``, while this process used ``cpu_seconds`` of CPU."""
        share = min(1.0, cpu_seconds / seconds) if seconds > 0 else 1.0
        with self._lock:
            if self.seconds is None:
                self.seconds, self.cpu_share = seconds, share
            else:
                self.seconds += self.weight * (seconds - self.seconds)
                self.cpu_share += self.weight * (share - self.cpu_share)
