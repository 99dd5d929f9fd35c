"""This process as a worker: its identity, start and stop, signals. Not for add-ons.

Including ``single_db_worker.zcml`` (or ``multi_db_worker.zcml``) in a Zope
instance registers ``start_worker`` for IProcessStarting: that is all it
takes to make the instance a worker. Plone's official backend image writes
zope.conf from environment variables and loads add-ons' ZCML with
plone.autoinclude, so a container cannot easily include that ZCML: every
instance (the add-on's own ZCML subscribes ``start_if_requested``) becomes a
worker when it starts with ``ZASYNC_WORKER=1`` (worker/settings.py).
"""

from collective.zasync.worker import tuning
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.settings import product_config
from collective.zasync.worker.settings import worker_requested
from collective.zasync.worker.settings import WorkerSettings

import logging
import os
import signal
import uuid


log = logging.getLogger("collective.zasync")

# Set by the zasync-worker command (worker/cli.py) before Zope starts, so that a
# dispatcher started by the worker ZCML's subscriber gets them too: a suffix
# of the UUID file (".2": one identity per worker process) and --threads.
process_options = {"uuid_suffix": "", "threads": None}


def worker_uuid(path=None):
    """This worker's UUID: ZASYNC_UUID itself if it is a UUID (containers), else from the
    file it names; created on first start."""
    if not path:
        path = os.environ.get("ZASYNC_UUID") or product_config().get("uuid-file")
        if path and is_uuid(path):  # worker process N of zasync-worker: one derived from it
            suffix = process_options["uuid_suffix"]
            return str(uuid.uuid5(uuid.UUID(path), suffix)) if suffix else str(uuid.UUID(path))
        if not path:
            raise RuntimeError(
                "This instance includes the collective.zasync worker ZCML but has "
                "no worker identity: set the environment variable ZASYNC_UUID to a "
                "file path (e.g. var/worker1-uuid.txt); the file is created on first start."
            )
        path += process_options["uuid_suffix"]
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


def is_uuid(text):
    """True if ``text`` is a UUID rather than a file path."""
    try:
        uuid.UUID(text.strip())
    except ValueError:
        return False
    return "/" not in text and "\\" not in text


_dispatcher = None


def get_dispatcher():
    """The dispatcher running in this process, or None."""
    return _dispatcher


def start_worker(event=None, db=None):
    """Start this process's dispatcher (subscriber of IProcessStarting).

    Without ``db`` it is Zope's database, and this process one that Zope has started:
    it is tuned for jobs first (worker/tuning.py).
    """
    global _dispatcher
    if os.environ.get("ZASYNC_DISABLE"):
        log.info("ZASYNC_DISABLE is set: not starting the worker.")
        return None
    if _dispatcher is not None:
        return _dispatcher
    if db is None:
        import Zope2

        db = Zope2.DB
        tuning.freeze_startup_objects()
        tuning.remember_classes(db)
    settings = WorkerSettings.from_product_config()
    if process_options["threads"]:
        settings.threads = process_options["threads"]
    _dispatcher = Dispatcher(db, worker_uuid(), settings)
    _dispatcher.start()
    _install_signal_handlers()
    return _dispatcher


def start_if_requested(event=None):
    """Subscriber of IProcessStarting: start the worker if ZASYNC_WORKER says so."""
    if not worker_requested():
        return None
    log.info("ZASYNC_WORKER is set: this instance runs jobs.")
    return start_worker(event)


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
