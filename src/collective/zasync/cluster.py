"""A pip-only cluster: a storage server, a client instance and N worker instances.

The storage: a ZEO server (FileStorage), or RelStorage on a private PostgreSQL server.

Used by ``make cluster-start`` / ``make cluster-stop``, by the multi-process
tests and by the benchmarks, so that all three run the same configuration
that an integrator would deploy. Run ``python -m collective.zasync.cluster
--help`` for the command line.
"""

from collective.zasync.lifeline import tied
from collective.zasync.postgres import PostgresServer
from pathlib import Path

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import time


BIN = Path(sys.executable).parent
log = logging.getLogger("collective.zasync.cluster")

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


class ClusterError(RuntimeError):
    """A cluster that cannot start as asked; the message says what to do."""
PG_DATABASES = {"main": "zasync", "async": "zasync_async"}

# A stock ZEO server cannot import Plone's classes (DateTime in the catalog's metadata, ...),
# so it cannot resolve conflicts on the objects holding them: the clients do (ZEO 5+).
ZEO_CONF = """\
<zeo>
  address 127.0.0.1:{port}
  client-conflict-resolution true
</zeo>
<filestorage 1>
  path {var}/Data.fs
  blob-dir {var}/blobs
</filestorage>
<filestorage async>
  path {var}/Async.fs
</filestorage>
<eventlog>
  <logfile>
    path {var}/zeo.log
  </logfile>
</eventlog>
"""

ZOPE_CONF = """\
%define INSTANCE {home}
instancehome $INSTANCE
clienthome $INSTANCE/var
debug-mode {debug_mode}
security-policy-implementation C
verbose-security off
default-zpublisher-encoding utf-8
<environment>
  ZASYNC_UUID $INSTANCE/var/worker-uuid.txt
  CHAMELEON_CACHE $INSTANCE/var/cache
</environment>
<product-config collective.zasync>
{product_config}
</product-config>
{databases}
"""

ZEO_DB = """\
<zodb_db main>
  <zeoclient>
    server 127.0.0.1:{zeo_port}
    storage 1
    name main
    blob-dir {zeo_var}/blobs
    shared-blob-dir true
  </zeoclient>
  mount-point /
  cache-size 50000
</zodb_db>
"""

STANDALONE_DB = """\
<zodb_db main>
  <filestorage>
    path $INSTANCE/var/filestorage/Data.fs
    blob-dir $INSTANCE/var/blobstorage
  </filestorage>
  mount-point /
</zodb_db>
"""

ASYNC_DB = """\
<zodb_db async>
  <zeoclient>
    server 127.0.0.1:{zeo_port}
    storage async
    name async
  </zeoclient>
  mount-point /zasync
</zodb_db>
"""

# keep-history false: as Plone's images have it (no undo, no packing of old revisions).
RELSTORAGE = """\
  <relstorage>
    <postgresql>
      dsn {dsn}
    </postgresql>
    keep-history false
{blobs}  </relstorage>"""

# Each process has its own blob cache; the blobs themselves are in PostgreSQL.
RELSTORAGE_BLOBS = """\
    blob-dir {blob_dir}
    shared-blob-dir false
"""

RELSTORAGE_DB = """\
<zodb_db {name}>
{storage}
  mount-point {mount_point}
  cache-size 50000
</zodb_db>
"""

ZOPE_INI = """\
[app:zope]
use = egg:Zope#main
zope_conf = %(here)s/zope.conf

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {http_port}
threads = 4

[pipeline:main]
pipeline =
    egg:Zope#httpexceptions
    zope

[loggers]
keys = root

[handlers]
keys = logfile

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = logfile

[handler_logfile]
class = FileHandler
args = (r'{home}/var/instance.log', 'a')
level = INFO
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)s [%(name)s][%(threadName)s] %(message)s
"""

SITE_ZCML = """\
<configure
    xmlns="http://namespaces.zope.org/zope"
    xmlns:five="http://namespaces.zope.org/five">
  <include package="Zope2.App" />
  <five:loadProducts file="meta.zcml" />
  <five:loadProducts />
  <!-- after Plone (which loads collective.zasync through plone.autoinclude) -->
  <include package="collective.zasync" file="{zcml}" />
  <!-- the demo pages of make run (not part of the add-on's configuration) -->
  <include package="collective.zasync.demo" />
  <five:loadProductsOverrides />
</configure>
"""

DEFAULT_WORKER_CONFIG = {"threads": "2", "poll-interval": "0", "ping-interval": "2", "death-interval": "10"}


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
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


def pid_alive(pid):
    """True while process ``pid`` runs (a zombie, exited but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path("/proc/%d/stat" % pid).read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: believe kill()


def running_pids(root):
    """{pid file: pid} of the processes started by ``zasync-cluster start`` that still run."""
    pids = {}
    for pidfile in Path(root).glob("*.pid"):
        pid = int(pidfile.read_text())
        if pid_alive(pid):
            pids[pidfile] = pid
    return pids


def stop_pids(root, timeout=90):
    """SIGTERM the instances, wait until they exited, then the storage server.

    The ZEO or PostgreSQL server goes last: a stopping worker commits (jobs
    finishing, unregistering) and waits for the server as long as it is gone.
    PostgreSQL stops once the instances' sessions are gone (SIGTERM: smart shutdown).
    """
    servers = [Path(root) / "zeo.pid", Path(root) / "postgres.pid"]
    for group in ([p for p in Path(root).glob("*.pid") if p not in servers], servers):
        pids = [int(p.read_text()) for p in group if p.exists()]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in pids:
            if pid_alive(pid):
                log.warning("pid %s did not stop in %s s: SIGKILL", pid, timeout)
                os.kill(pid, signal.SIGKILL)
        for pidfile in group:
            pidfile.unlink(missing_ok=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["write", "start", "stop", "standalone"])
    parser.add_argument("--root", default="var/cluster", help="where configuration, data and logs go")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--multi-db", action="store_true", help="queues in their own 'async' database")
    parser.add_argument("--storage", choices=STORAGES, default="zeo",
                        help="zeo: a ZEO server, FileStorage; relstorage: RelStorage on PostgreSQL")
    parser.add_argument("--zeo-port", type=int, default=8100)
    parser.add_argument("--pg-port", type=int, default=8432, help="PostgreSQL's port (--storage relstorage)")
    parser.add_argument("--stock-zeo", action=argparse.BooleanOptionalAction,
                        help="ZEO from .venv-zeo, without collective.zasync (default: STOCK_ZEO)")
    parser.add_argument("--client-port", "--http-port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.command == "standalone":
        home = write_standalone(args.root, args.client_port)
        print("Wrote the instance %s (FileStorage, queues and runs jobs)." % home)
        return
    if args.command == "stop":
        stop_pids(args.root)
        return
    if running_pids(args.root):
        # A second server would fail on the taken ports while the first one answers.
        sys.exit("A cluster runs already in %s: zasync-cluster stop --root %s" % (args.root, args.root))
    cluster = Cluster(args.root, zeo_port=args.zeo_port, multi_db=args.multi_db, storage=args.storage,
                      stock_zeo=args.stock_zeo, pg_port=args.pg_port)
    cluster.write(args.workers, args.client_port)
    if args.command == "write":
        return
    if args.storage == "zeo":
        try:
            cluster.runzeo()  # before anything starts: say what to install, not a traceback
        except ClusterError as error:
            sys.exit("zasync-cluster: error: %s" % error)
    try:
        cluster.start_storage()
        for name in ["client"] + ["worker%d" % n for n in range(1, args.workers + 1)]:
            cluster.start_instance(name)
    except BaseException:
        cluster.stop_all()  # nothing half-started left behind without a pid file
        raise
    cluster.write_pids()
    server = "ZEO" if args.storage == "zeo" else "PostgreSQL (RelStorage)"
    port = args.zeo_port if args.storage == "zeo" else args.pg_port
    print("Cluster running: %s on 127.0.0.1:%s, client on http://127.0.0.1:%s/"
          % (server, port, args.client_port))


if __name__ == "__main__":
    main()
