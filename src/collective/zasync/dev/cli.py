"""``zasync-cluster``: write, start and stop the pip-only cluster (``make cluster-start``,
``make run``). The console script (setup.py); not for add-ons.
"""

from collective.zasync.dev.cluster import Cluster
from collective.zasync.dev.cluster import ClusterError
from collective.zasync.dev.cluster import STORAGES
from collective.zasync.dev.cluster import write_standalone
from pathlib import Path

import argparse
import logging
import os
import signal
import sys
import time


log = logging.getLogger("collective.zasync.dev.cli")


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
    parser = argparse.ArgumentParser(
        prog="zasync-cluster", description="A pip-only cluster: a storage server, a client "
        "instance and N worker instances.")
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
