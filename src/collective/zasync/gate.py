"""The conflict gate: a job that keeps conflicting runs alone among its process's jobs."""

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
    """

    def __init__(self, alone_after=2, max_seconds=2.0, wait=10.0):
        self.alone_after = alone_after
        self.max_seconds = max_seconds
        self.wait = wait
        self._lock = threading.Condition()
        self._shared = 0
        self._alone = False

    def should_run_alone(self, conflicts, last_seconds):
        return conflicts >= self.alone_after and last_seconds < self.max_seconds

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


gate = ConflictGate()  # shared by the runner threads of this process
