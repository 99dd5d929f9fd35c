"""Worker processes: their record in the database, their settings, start and stop.

Including ``single_db_worker.zcml`` (or ``multi_db_worker.zcml``) in a Zope
instance registers ``start_worker`` for IProcessStarting: that is all it
takes to make the instance a worker.
"""

from collective.zasync import interfaces
from collective.zasync.job import utcnow
from collective.zasync.queue import JobList
from dataclasses import dataclass
from persistent import Persistent
from zope.interface import implementer

import logging
import os
import signal
import socket
import uuid


log = logging.getLogger("collective.zasync")


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

    def __init__(self, uuid, threads):
        self.uuid = uuid
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.threads = threads
        self.started = utcnow()
        self.ping = Ping()
        self.active = JobList()  # jobs it claimed and has not finished
        self.done = JobList()  # jobs it finished, for its dispatcher to file
        self.slots = tuple(Progress() for _ in range(threads))

    @property
    def last_ping(self):
        return self.ping.time

    def is_alive(self, death_interval):
        return (utcnow() - self.ping.time).total_seconds() < death_interval

    def __repr__(self):
        return "<Worker %s on %s pid %s>" % (self.uuid, self.host, self.pid)


@dataclass
class Settings:
    """Worker settings; zope.conf's <product-config collective.zasync> overrides them."""

    threads: int = 2  # jobs run at once by this process
    poll_interval: float = 5.0  # seconds between checks when nothing wakes us
    ping_interval: float = 10.0  # seconds between pings
    death_interval: float = 60.0  # a worker silent this long is dead
    retention_days: float = 7.0  # finished jobs are removed after this
    max_retries: int = 5  # ConflictError retries of a job
    stop_timeout: float = 30.0  # seconds running jobs get to finish on shutdown
    time_limit: float = 0.0  # seconds a job may run before it is failed (0: no limit)

    @classmethod
    def from_product_config(cls, config=None):
        """Settings from a product-config dict (of strings); bad values raise."""
        if config is None:
            config = product_config()
        settings = cls()
        for name, value in (config or {}).items():
            key = name.replace("-", "_")
            if key == "uuid_file":  # read by worker_uuid()
                continue
            if key not in cls.__dataclass_fields__:
                known = sorted(n.replace("_", "-") for n in cls.__dataclass_fields__)
                raise ValueError(
                    "product-config collective.zasync: unknown setting %r; the settings are "
                    "%s and uuid-file." % (name, ", ".join(known))
                )
            kind = type(getattr(settings, key))
            try:
                setattr(settings, key, kind(value))
            except ValueError:
                raise ValueError(
                    "product-config collective.zasync: %s must be %s, not %r."
                    % (name, "a whole number" if kind is int else "a number", value)
                ) from None
        return settings


def product_config():
    """zope.conf's <product-config collective.zasync> as a dict (maybe empty)."""
    try:
        from App.config import getConfiguration

        return (getattr(getConfiguration(), "product_config", None) or {}).get(
            "collective.zasync", {}
        )
    except ImportError:
        return {}


def worker_uuid(path=None):
    """This worker's UUID, from the file named by ZASYNC_UUID; created on first start."""
    path = path or os.environ.get("ZASYNC_UUID") or product_config().get("uuid-file")
    if not path:
        raise RuntimeError(
            "This instance includes the collective.zasync worker ZCML but has "
            "no worker identity: set the environment variable ZASYNC_UUID to a "
            "file path (e.g. var/worker1-uuid.txt); the file is created on first start."
        )
    if os.path.exists(path):
        with open(path) as f:
            text = f.read().strip()
        return str(uuid.UUID(text))
    value = str(uuid.uuid1())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(value + "\n")
    log.info("Created worker UUID %s in %s", value, path)
    return value


_dispatcher = None


def get_dispatcher():
    """The dispatcher running in this process, or None."""
    return _dispatcher


def start_worker(event=None, db=None):
    """Start this process's dispatcher (subscriber of IProcessStarting)."""
    global _dispatcher
    if os.environ.get("ZASYNC_DISABLE"):
        log.info("ZASYNC_DISABLE is set: not starting the worker.")
        return None
    if _dispatcher is not None:
        return _dispatcher
    from collective.zasync.dispatcher import Dispatcher

    if db is None:
        import Zope2

        db = Zope2.DB
    settings = Settings.from_product_config()
    _dispatcher = Dispatcher(db, worker_uuid(), settings)
    _dispatcher.start()
    _install_signal_handlers()
    return _dispatcher


def stop_worker(event=None):
    """Stop the dispatcher: running jobs finish or are handed back."""
    global _dispatcher
    if _dispatcher is not None:
        _dispatcher.stop()
        _dispatcher = None


def _install_signal_handlers():
    # SIGTERM would end the process without letting jobs finish or handing
    # them back; stop the worker first, then do what was going to happen.
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:
        return

    def on_sigterm(signum, frame):
        log.info("SIGTERM: stopping the collective.zasync worker.")
        stop_worker()
        if callable(previous):
            previous(signum, frame)
        else:
            raise SystemExit(0)

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:
        pass  # not the main thread: the process manager stops us another way
    import atexit

    atexit.register(stop_worker)
