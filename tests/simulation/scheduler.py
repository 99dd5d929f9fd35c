"""A deterministic scheduler: the package's real threads take turns in a seeded order.

Every thread of a simulated process (a worker's dispatcher loop and job
threads, a request, an administrator) is a real thread, but only one runs at a
time. It runs until a yield point (a commit, a sleep, a wait on an event, a
lock, a condition or a queue, or a point a job function chooses), then the
scheduler picks the next thread with its seeded random generator. Time is
simulated: sleeps and timeouts move the simulated clock, never the wall clock.
So a seed replays the same interleaving, step by step.

The package's modules are run unchanged: while a simulation runs, the names
they use for time, threads, randomness and job ids (``time``, ``datetime``,
``threading``, ``queue``, ``random``, ``os.urandom``, ``uuid``) are replaced
in their module globals by simulated ones (``patched``).
"""

from datetime import datetime as real_datetime
from datetime import timezone

import contextlib
import datetime as datetime_module
import os
import queue as real_queue
import random as random_module
import sys
import threading
import time as real_time
import traceback
import uuid as uuid_module


_current = threading.local()  # .actor: the Actor this real thread is


class Killed(BaseException):
    """Raised in the threads of a process the simulation killed: they unwind, committing nothing."""


class Process:
    """A simulated process: its threads are killed together, and can be paused together."""

    def __init__(self, name, pid):
        self.name = name
        self.pid = pid  # what os.getpid() says in its threads
        self.killed = False
        self.paused_until = None  # simulated time before which none of its threads runs

    def __repr__(self):
        return "<Process %s%s>" % (self.name, " killed" if self.killed else "")


class Actor:
    """One real thread that runs only when the scheduler hands it the turn."""

    def __init__(self, sim, name, process, target):
        self.sim = sim
        self.name = name
        self.process = process
        self.target = target
        self.ready = None  # runnable once this returns True (None: at once) ...
        self.deadline = None  # ... or once the simulated clock reaches this
        self.done = False
        self.go = threading.Lock()  # released by the scheduler to hand this thread the turn
        self.go.acquire()
        self.thread = threading.Thread(target=self._main, name="sim:" + name, daemon=True)

    def __repr__(self):
        return "<Actor %s>" % self.name

    def _main(self):
        _current.actor = self
        sim = self.sim
        self.go.acquire()
        try:
            if self.process.killed:
                raise Killed()
            self.target()
        except Killed:
            pass
        except BaseException as exc:  # a crash of a thread is a finding, never silent
            sim.crashes.append((self.name, exc, traceback.format_exc()))
            if os.environ.get("SIM_TRACEBACKS"): traceback.print_exc()
        finally:
            self.done = True
            sim._back.release()

    def runnable(self, now):
        if self.done or self.process.killed:
            return False
        if self.process.paused_until is not None and now < self.process.paused_until:
            return False
        if self.deadline is not None and self.deadline <= now:
            return True
        if self.ready is None:
            return self.deadline is None
        return bool(self.ready())


class Simulation:
    """The scheduler and the simulated clock of one schedule (one seed)."""

    EPOCH = 1_800_000_000.0  # simulated seconds since 1970 when a schedule starts

    def __init__(self, seed):
        self.seed = seed
        self.rng = random_module.Random(seed)
        self.now = self.EPOCH
        self.actors = []
        self.crashes = []  # (actor name, exception, traceback) of threads that raised
        self.steps = 0
        self.trace = []  # (step, actor name, simulated time) of the last steps, for reports
        self._back = threading.Lock()  # released by the thread that had the turn, when it yields
        self._back.acquire()
        self._starting = None  # the process whose threads are being started from outside
        self._pids = 100

    # -- threads -----------------------------------------------------------------------

    def process(self, name):
        """A new simulated process, with a pid of its own."""
        self._pids += 1
        return Process(name, self._pids)

    def spawn(self, name, process, target):
        actor = Actor(self, name, process, target)
        self.actors.append(actor)
        actor.thread.start()
        return actor

    def current(self):
        actor = getattr(_current, "actor", None)
        return actor if actor is not None and actor.sim is self else None

    def process_of_caller(self):
        actor = self.current()
        if actor is not None:
            return actor.process
        if self._starting is None:
            raise RuntimeError("A thread is started outside any simulated process.")
        return self._starting

    @contextlib.contextmanager
    def starting(self, process):
        """Threads started in this block (from the main thread) belong to ``process``."""
        self._starting = process
        try:
            yield
        finally:
            self._starting = None

    def pause(self, ready=None, timeout=None):
        """A yield point: let other threads run until ``ready()`` or ``timeout`` simulated seconds.

        Called outside a simulated thread (the test's own thread), it does nothing.
        """
        actor = self.current()
        if actor is None:
            return
        if actor.process.killed:
            raise Killed()
        actor.ready = ready
        actor.deadline = None if timeout is None else self.now + max(timeout, 0.0)
        self._back.release()
        actor.go.acquire()
        actor.ready = actor.deadline = None
        if actor.process.killed:
            raise Killed()

    def step(self):
        """Let one thread run to its next yield point; False if no thread will ever run again."""
        self.actors = [actor for actor in self.actors if not actor.done]
        candidates = [actor for actor in self.actors if actor.runnable(self.now)]
        if not candidates:
            later = [actor.deadline for actor in self.actors
                     if actor.deadline is not None and not actor.process.killed]
            later += [actor.process.paused_until for actor in self.actors
                      if actor.process.paused_until is not None and not actor.process.killed]
            later = [when for when in later if when > self.now]
            if not later:
                return False
            self.now = min(later)  # everybody waits: jump to the first timeout
            return True
        actor = self.rng.choice(candidates)
        self.now += self.rng.random() * 0.004  # running costs a little time
        self.run(actor)
        return True

    def run(self, actor):
        """Hand the turn to ``actor`` and wait until it yields or ends."""
        self.steps += 1
        self.trace.append((self.steps, actor.name, round(self.now - self.EPOCH, 4)))
        del self.trace[:-60]
        actor.go.release()
        self._back.acquire()

    def kill(self, process):
        """Kill ``process`` between two steps: its threads unwind at once, committing nothing."""
        process.killed = True
        for actor in list(self.actors):
            if actor.process is process and not actor.done:
                self.run(actor)  # (it raises Killed at its yield point; each later one raises too)

    def finish(self):
        """Kill every process left, so that no thread outlives the schedule."""
        for process in {actor.process for actor in self.actors}:
            self.kill(process)

    def sleep(self, seconds):
        actor = self.current()
        if actor is None:
            self.now += max(seconds, 0.0)  # the test's own thread: just move the clock
        else:
            self.pause(timeout=seconds)

    # -- the names the package's modules use ---------------------------------------------

    @contextlib.contextmanager
    def patched(self, prefix="collective.zasync"):
        """Replace time, threads, randomness and ids in the modules under ``prefix``."""
        replacements = self.replacements()
        undo = []
        for name, module in list(sys.modules.items()):
            if module is None or not (name == prefix or name.startswith(prefix + ".")):
                continue
            for attr, value in list(vars(module).items()):
                new = replacements.get(id(value))
                if new is not None:
                    undo.append((module, attr, value))
                    setattr(module, attr, new)
        try:
            yield
        finally:
            for module, attr, value in reversed(undo):
                setattr(module, attr, value)

    def replacements(self):
        sim = self
        rng = random_module.Random(self.rng.random())

        clock = Overlay(
            real_time,
            time=lambda: sim.now,
            time_ns=lambda: int(sim.now * 1e9),
            monotonic=lambda: sim.now,
            perf_counter=lambda: sim.now,
            process_time=lambda: sim.now,  # (worker/turns.py: deterministic, as the rest)
            thread_time=lambda: sim.now,
            sleep=sim.sleep,
        )

        class _DatetimeMeta(type):
            def __instancecheck__(cls, obj):
                return isinstance(obj, real_datetime)

        class SimDatetime(real_datetime, metaclass=_DatetimeMeta):
            """datetime on the simulated clock; what it makes are plain datetimes (they get stored)."""

            def __new__(cls, *args, **kwargs):
                return real_datetime(*args, **kwargs)

            @classmethod
            def now(cls, tz=None):
                return real_datetime.fromtimestamp(sim.now, tz)

            @classmethod
            def utcnow(cls):
                return real_datetime.fromtimestamp(sim.now, timezone.utc).replace(tzinfo=None)

            @classmethod
            def fromtimestamp(cls, timestamp, tz=None):
                return real_datetime.fromtimestamp(timestamp, tz)

            @classmethod
            def fromisoformat(cls, text):
                return real_datetime.fromisoformat(text)

            @classmethod
            def combine(cls, *args, **kwargs):
                return real_datetime.combine(*args, **kwargs)

        datetime_namespace = Overlay(datetime_module, datetime=SimDatetime)
        def getpid():
            actor = sim.current()
            return actor.process.pid if actor is not None else 1

        def kill(pid, signal):  # (os.kill(pid, 0): is that process alive?)
            if not any(actor.process.pid == pid and not actor.process.killed and not actor.done
                       for actor in sim.actors):
                raise ProcessLookupError(pid)

        os_namespace = Overlay(os, urandom=lambda n: bytes(rng.getrandbits(8) for _ in range(n)),
                               getpid=getpid, kill=kill)
        uuid4 = lambda: uuid_module.UUID(int=rng.getrandbits(128), version=4)  # noqa: E731
        uuid_namespace = Overlay(uuid_module, uuid4=uuid4, uuid1=uuid4)
        threading_namespace = Overlay(
            threading,
            Thread=lambda **kw: SimThread(sim, **kw),
            Event=lambda: SimEvent(sim),
            Lock=lambda: SimLock(sim),
            RLock=lambda: SimLock(sim, reentrant=True),
            Condition=lambda lock=None: SimCondition(sim, lock),
        )
        queue_namespace = Overlay(real_queue, Queue=lambda maxsize=0: SimQueue(sim))

        return {
            id(real_time): clock,
            id(real_datetime): SimDatetime,
            id(datetime_module): datetime_namespace,
            id(random_module): rng,
            id(os): os_namespace,
            id(uuid_module): uuid_namespace,
            id(threading): threading_namespace,
            id(real_queue): queue_namespace,
        }


class Overlay:
    """A module with some of its names replaced."""

    def __init__(self, module, **names):
        self._module = module
        self.__dict__.update(names)

    def __getattr__(self, name):
        return getattr(self._module, name)


# -- threads and their primitives, on the scheduler ----------------------------------------


class SimThread:
    """threading.Thread for the package's code: an actor of the calling process."""

    def __init__(self, sim, target=None, args=(), kwargs=None, name=None, daemon=None):
        self.sim = sim
        self.name = name or "thread"
        self._call = lambda: target(*args, **(kwargs or {}))
        self.actor = None

    def start(self):
        process = self.sim.process_of_caller()
        self.actor = self.sim.spawn("%s/%s" % (process.name, self.name), process, self._call)

    def join(self, timeout=None):
        self.sim.pause(ready=lambda: self.actor.done, timeout=timeout)

    def is_alive(self):
        return self.actor is not None and not self.actor.done


class SimEvent:
    def __init__(self, sim):
        self.sim = sim
        self._flag = False

    def set(self):
        self._flag = True

    def clear(self):
        self._flag = False

    def is_set(self):
        return self._flag

    def wait(self, timeout=None):
        if not self._flag:
            self.sim.pause(ready=lambda: self._flag, timeout=timeout)
        return self._flag


class SimLock:
    def __init__(self, sim, reentrant=False):
        self.sim = sim
        self.reentrant = reentrant
        self.owner = None
        self.depth = 0

    def acquire(self, blocking=True, timeout=-1):
        me = self.sim.current() or "main"
        if self.reentrant and self.owner is me:
            self.depth += 1
            return True
        if self.owner is not None:
            if not blocking:
                return False
            self.sim.pause(ready=lambda: self.owner is None, timeout=None if timeout < 0 else timeout)
            if self.owner is not None:
                return False
        self.owner, self.depth = me, 1
        return True

    def release(self):
        self.depth -= 1
        if self.depth <= 0:
            self.owner, self.depth = None, 0

    def locked(self):
        return self.owner is not None

    __enter__ = acquire

    def __exit__(self, *exc):
        self.release()


class SimCondition:
    def __init__(self, sim, lock=None):
        self.sim = sim
        self._lock = lock or SimLock(sim, reentrant=True)
        self._waiters = []

    def __enter__(self):
        return self._lock.acquire()

    def __exit__(self, *exc):
        self._lock.release()

    def acquire(self, *args):
        return self._lock.acquire(*args)

    def release(self):
        self._lock.release()

    def wait(self, timeout=None):
        waiter = [False]
        self._waiters.append(waiter)
        depth = self._lock.depth
        self._lock.owner, self._lock.depth = None, 0
        try:
            self.sim.pause(ready=lambda: waiter[0], timeout=timeout)
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            while self._lock.owner is not None:  # taken meanwhile: wait for it, as a real one does
                self.sim.pause(ready=lambda: self._lock.owner is None)
            self._lock.owner, self._lock.depth = self.sim.current() or "main", depth
        return waiter[0]

    def wait_for(self, predicate, timeout=None):
        while not predicate():
            if not self.wait(timeout):
                return predicate()
        return True

    def notify(self, n=1):
        for waiter in self._waiters[:n]:
            waiter[0] = True
        del self._waiters[:n]

    def notify_all(self):
        self.notify(len(self._waiters))


class SimQueue:
    def __init__(self, sim):
        self.sim = sim
        self.items = []

    def put(self, item, block=True, timeout=None):
        self.items.append(item)

    def get(self, block=True, timeout=None):
        if not self.items:
            if not block:
                raise real_queue.Empty
            self.sim.pause(ready=lambda: bool(self.items), timeout=timeout)
            if not self.items:
                raise real_queue.Empty
        return self.items.pop(0)

    def get_nowait(self):
        return self.get(block=False)

    def qsize(self):
        return len(self.items)

    def empty(self):
        return not self.items
