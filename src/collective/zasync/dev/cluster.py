"""A pip-only cluster: a storage server, a client instance and N worker instances. Not for add-ons.

The storage: a ZEO server (FileStorage), or RelStorage on a private PostgreSQL server.

Used by ``make cluster-start`` / ``make cluster-stop`` (``zasync-cluster``: dev/cli.py),
by the multi-process tests and by the benchmarks, so that all three run the same
configuration that an integrator would deploy.
"""

from collective.zasync.dev.lifeline import tied
from collective.zasync.dev.postgres import PostgresServer
from collective.zasync.dev.templates import ASYNC_DB
from collective.zasync.dev.templates import DEFAULT_WORKER_CONFIG
from collective.zasync.dev.templates import RELSTORAGE
from collective.zasync.dev.templates import RELSTORAGE_BLOBS
from collective.zasync.dev.templates import RELSTORAGE_DB
from collective.zasync.dev.templates import SITE_ZCML
from collective.zasync.dev.templates import STANDALONE_DB
from collective.zasync.dev.templates import ZEO_CONF
from collective.zasync.dev.templates import ZEO_DB
from collective.zasync.dev.templates import ZOPE_CONF
from collective.zasync.dev.templates import ZOPE_INI
from pathlib import Path

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time


BIN = Path(sys.executable).parent
log = logging.getLogger("collective.zasync.dev.cluster")

# Which ZEO server the cluster (the tests, the benchmarks, zasync-cluster) starts. True: a
# stock one, ZEO alone in a virtualenv beside this one (`make zeo-venv`), as in Plone's
# official ZEO image: it cannot import collective.zasync, and the queue needs nothing of it.
# False: runzeo of this virtualenv. ZASYNC_STOCK_ZEO=1 or =0 overrides it.
STOCK_ZEO = True
# ZASYNC_ZEO_RUNZEO names another stock runzeo.
STOCK_RUNZEO = BIN.parent.parent / ".venv-zeo" / "bin" / "runzeo"
STORAGES = ("zeo", "relstorage")
NO_STOCK_ZEO = """\
no stock ZEO server at {path}.
zasync-cluster runs its ZEO server from a virtualenv that holds ZEO alone (as Plone's ZEO
image does). Make one and name its runzeo:
    python3 -m venv /srv/zeo && /srv/zeo/bin/pip install ZEO=={version}
    export ZASYNC_ZEO_RUNZEO=/srv/zeo/bin/runzeo
or run ZEO from this virtualenv: zasync-cluster start --no-stock-zeo (or ZASYNC_STOCK_ZEO=0).
In a checkout of collective.zasync: make zeo-venv."""


PG_DATABASES = {"main": "zasync", "async": "zasync_async"}


class ClusterError(RuntimeError):
    """A cluster that cannot start as asked; the message says what to do."""


def end_process(process, sig=signal.SIGTERM, timeout=60):
    """Send ``sig`` to ``process`` if it runs, wait ``timeout`` seconds for it, then kill it."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port():
    """A TCP port on 127.0.0.1 that nobody uses right now and that this process has not handed out.

    Not one the kernel would pick (``bind(0)``): between the check and the server's own bind,
    such a port can become the local end of any outgoing connection (a ZEO client's, a
    PostgreSQL client's), and the server then fails with "Address already in use". Ports
    below the kernel's range for outgoing connections are never taken that way; each
    process walks its own slice of them (by its pid), so two test processes that start
    servers at once do not pick the same ports.
    """
    with _PORT_LOCK:
        for port in _PORT_CANDIDATES:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise ClusterError("No free TCP port on 127.0.0.1 below the kernel's range for outgoing connections")


def _port_candidates(first=10000, slice_size=500):
    """Each port from ``first`` up to the kernel's outgoing range once, this process's slice first."""
    try:
        outgoing = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        outgoing = 32768  # Linux's default
    slices = max(1, (outgoing - first) // slice_size)
    # Sibling processes have neighbouring pids: 17 slices apart, not next to each other.
    start = first + (os.getpid() * 17 % slices) * slice_size
    yield from range(start, first + slices * slice_size)
    yield from range(first, start)


_PORT_CANDIDATES = _port_candidates()
_PORT_LOCK = threading.Lock()


def wait_for_port(port, seconds=120, process=None):
    """Wait until something listens on ``port``; RuntimeError if it does not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("Process %s exited with %s before listening on %s" % (process.args, process.returncode, port))
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("Nothing listens on 127.0.0.1:%s after %s s" % (port, seconds))


def write_instance_files(home, http_port, zcml, databases, product_config, debug_mode="off"):
    """Write etc/zope.conf, etc/zope.ini and etc/site.zcml of an instance."""
    home = Path(home).absolute()
    (home / "etc").mkdir(parents=True, exist_ok=True)
    (home / "var" / "cache").mkdir(parents=True, exist_ok=True)
    settings = "\n".join("  %s %s" % item for item in product_config.items())
    (home / "etc" / "zope.conf").write_text(
        ZOPE_CONF.format(home=home, product_config=settings, databases=databases, debug_mode=debug_mode)
    )
    (home / "etc" / "zope.ini").write_text(ZOPE_INI.format(home=home, http_port=http_port))
    (home / "etc" / "site.zcml").write_text(SITE_ZCML.format(zcml=zcml))
    (home / "http_port").write_text(str(http_port))
    return home


def write_standalone(home, http_port=8080):
    """One process with its own FileStorage that both queues and runs jobs (``make run``)."""
    home = Path(home).absolute()
    (home / "var" / "filestorage").mkdir(parents=True, exist_ok=True)
    config = dict(DEFAULT_WORKER_CONFIG, **{"ping-interval": "10", "death-interval": "60"})
    return write_instance_files(home, http_port, "single_db_worker.zcml", STANDALONE_DB, config, "on")


def stock_zeo_default():
    """STOCK_ZEO, unless the environment says ZASYNC_STOCK_ZEO=1 or =0."""
    return {"1": True, "0": False}.get(os.environ.get("ZASYNC_STOCK_ZEO", ""), STOCK_ZEO)


class Cluster:
    """Writes and runs the cluster's configuration under ``root``.

    ``storage``: "zeo" (a ZEO server; ``stock_zeo``: one without collective.zasync, see
    STOCK_ZEO) or "relstorage" (a PostgreSQL server in ``root``/postgres).
    ``tied``: every process it starts ends with this process, however it ends (the tests).
    """

    def __init__(self, root, zeo_port=None, multi_db=False, worker_config=None, storage="zeo",
                 stock_zeo=None, pg_port=None, tied=False):
        if storage not in STORAGES:
            raise ValueError("storage %r: one of %s" % (storage, ", ".join(STORAGES)))
        self.root = Path(root).absolute()
        self.zeo_var = self.root / "zeo"
        self.zeo_port = zeo_port or free_port()
        self.multi_db = multi_db
        self.worker_config = dict(DEFAULT_WORKER_CONFIG, **(worker_config or {}))
        self.storage = storage
        self.stock_zeo = stock_zeo_default() if stock_zeo is None else stock_zeo
        self.tied = tied
        self.postgres = None
        if storage == "relstorage":
            self.postgres = PostgresServer(self.root / "postgres", pg_port or free_port(), tied=tied)
        self.processes = {}  # name -> Popen

    # -- configuration -----------------------------------------------------------

    def write_zeo(self):
        self.zeo_var.mkdir(parents=True, exist_ok=True)
        (self.zeo_var / "blobs").mkdir(exist_ok=True)
        (self.root / "zeo.conf").write_text(ZEO_CONF.format(port=self.zeo_port, var=self.zeo_var))

    def relstorage(self, name, blob_dir=None):
        """The <relstorage> section of database ``name``."""
        blobs = RELSTORAGE_BLOBS.format(blob_dir=blob_dir) if blob_dir else ""
        return RELSTORAGE.format(dsn=self.postgres.dsn(PG_DATABASES[name]), blobs=blobs)

    def databases(self):
        """The <zodb_db> sections of an instance's zope.conf."""
        if self.postgres is not None:
            main = self.relstorage("main", "$INSTANCE/var/blobcache")
            databases = "%import relstorage\n"
            databases += RELSTORAGE_DB.format(name="main", storage=main, mount_point="/")
            if self.multi_db:
                databases += RELSTORAGE_DB.format(name="async", storage=self.relstorage("async"), mount_point="/zasync")
            return databases
        databases = ZEO_DB.format(zeo_port=self.zeo_port, zeo_var=self.zeo_var)
        if self.multi_db:
            databases += ASYNC_DB.format(zeo_port=self.zeo_port)
        return databases

    def write_instance(self, name, http_port, worker):
        """Write instance ``name``: a client that only queues, or a worker."""
        home = self.root / name
        kind = "multi_db" if self.multi_db else "single_db"
        zcml = "%s_%s.zcml" % (kind, "worker" if worker else "instance")
        return write_instance_files(home, http_port, zcml, self.databases(), self.worker_config)

    def write(self, workers=2, client_port=None):
        """Write the configuration of the ZEO server (PostgreSQL's: start_storage),
        ``client`` and ``worker1`` .. ``workerN``, on the HTTP ports ``client_port``
        and the next ones, or on free ones.
        """
        if self.postgres is None:
            self.write_zeo()
        self.write_instance("client", client_port or free_port(), worker=False)
        for number in range(1, workers + 1):
            port = client_port + number if client_port else free_port()
            self.write_instance("worker%d" % number, port, worker=True)

    # -- processes ---------------------------------------------------------------

    def runzeo(self):
        """The runzeo program the cluster starts."""
        if not self.stock_zeo:
            return BIN / "runzeo"
        path = Path(os.environ.get("ZASYNC_ZEO_RUNZEO") or STOCK_RUNZEO)
        if not path.exists():
            from importlib.metadata import version

            raise ClusterError(NO_STOCK_ZEO.format(path=path, version=version("ZEO")))
        return path

    def start_zeo(self):
        env = dict(os.environ)
        if self.stock_zeo:
            env.pop("PYTHONPATH", None)  # none of our code on the server's path
        log = open(self.root / "zeo.out", "ab")
        self.processes["zeo"] = subprocess.Popen(
            [str(self.runzeo()), "-C", str(self.root / "zeo.conf")],
            stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=self.preexec_fn(),
        )
        log.close()
        wait_for_port(self.zeo_port, 60, self.processes["zeo"])

    def start_storage(self):
        """Start the ZEO server, or PostgreSQL (with its databases the first time)."""
        if self.postgres is None:
            return self.start_zeo()
        if self.postgres.start():
            for database in PG_DATABASES.values():  # both, so a later --multi-db finds its own
                self.postgres.create_database(database)
        # RelStorage makes its tables when a storage first opens: here, not in racing instances.
        self.open_db().close()

    def stop_storage(self):
        if self.postgres is None:
            self.stop("zeo")
        else:
            self.postgres.stop()

    def start_instance(self, name, wait=True):
        home = self.root / name
        log = open(home / "var" / "stdout.log", "ab")
        env = dict(os.environ, ZASYNC_DISABLE="")
        self.processes[name] = process = subprocess.Popen(
            [str(BIN / "runwsgi"), str(home / "etc" / "zope.ini")],
            stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=self.preexec_fn(),
        )
        log.close()  # the child has its own copy
        if wait:
            self.wait_for(name)
        return process

    def wait_for(self, name):
        """Wait until instance ``name`` serves HTTP (its worker has started by then)."""
        wait_for_port(self.http_port(name), 180, self.processes[name])

    def http_port(self, name):
        return int((self.root / name / "http_port").read_text())

    def run_script(self, name, script, *args, timeout=600):
        """Run a Python script with ``app`` bound, in instance ``name``'s config."""
        home = self.root / name
        env = dict(os.environ, ZASYNC_DISABLE="1")  # a script is no worker
        result = subprocess.run(
            [str(BIN / "zconsole"), "run", str(home / "etc" / "zope.conf"), str(script), *map(str, args)],
            capture_output=True, text=True, env=env, timeout=timeout, preexec_fn=self.preexec_fn(),
        )
        if result.returncode != 0:
            raise RuntimeError("Script %s failed:\n%s\n%s" % (script, result.stdout, result.stderr))
        return result.stdout

    def preexec_fn(self):
        """What a process started by this cluster runs before its program (lifeline.py)."""
        return tied() if self.tied else None

    def stop(self, name, sig=signal.SIGTERM, timeout=60):
        process = self.processes.pop(name, None)
        if process is None:
            return
        end_process(process, sig, timeout)
        if getattr(process, "watcher", None) is not None:  # lifeline.popen_group's: stopped here
            process.watcher.cancel()

    def stop_all(self):
        for name in [n for n in self.processes if n != "zeo"]:
            self.stop(name)
        self.stop_storage()

    def open_db(self):
        """A ZODB.DB on the cluster's storage, for looking at jobs from a test."""
        from ZODB import DB

        databases = {}
        db = DB(self.open_storage("main"), database_name="main", databases=databases)
        if self.multi_db:
            DB(self.open_storage("async"), database_name="async", databases=databases)
        return db

    def open_storage(self, name):
        """The storage of database ``name`` (main or async) for this process."""
        if self.postgres is not None:
            from ZODB.config import storageFromString

            blob_dir = self.root / "blobcache" if name == "main" else None
            return storageFromString("%import relstorage\n" + self.relstorage(name, blob_dir))
        from ZEO.ClientStorage import ClientStorage

        address = ("127.0.0.1", self.zeo_port)
        # server_sync: each new transaction first asks the server, so a test that
        # only reads never looks at a view older than its question.
        if name == "main":
            return ClientStorage(
                address, storage="1", blob_dir=str(self.zeo_var / "blobs"), shared_blob_dir=True, server_sync=True
            )
        return ClientStorage(address, storage="async", server_sync=True)

    def write_pids(self):
        for name, process in self.processes.items():
            (self.root / ("%s.pid" % name)).write_text("%s\n" % process.pid)
        if self.postgres is not None:
            (self.root / "postgres.pid").write_text("%s\n" % self.postgres.pid())
