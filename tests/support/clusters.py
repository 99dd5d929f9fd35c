"""The clusters the multi-process tests run: layers that start a storage server, a client and workers."""

from collective.zasync import interfaces
from collective.zasync.dev.cli import pid_alive
from collective.zasync.dev.cluster import BIN
from collective.zasync.dev.cluster import Cluster
from collective.zasync.dev.cluster import free_port
from collective.zasync.dev.lifeline import popen_group
from pathlib import Path
from plone.testing import Layer

import collective.zasync.dev
import os
import shutil
import subprocess
import tempfile
import time
import transaction
import unittest


SCRIPTS = Path(collective.zasync.dev.__file__).parent
TESTS = Path(__file__).parent  # its scripts run in the instances: PYTHONPATH has the repository
FAST_WORKERS = {"ping-interval": "0.5", "death-interval": "5", "poll-interval": "0", "stop-timeout": "20"}


class ClusterLayer(Layer):
    """Starts the cluster once for all tests of the layer."""

    worker_instances = 2  # written by Cluster.write, started by start_workers

    def __init__(self, multi_db, name, storage="zeo"):
        super().__init__(name=name)
        self.multi_db = multi_db
        self.storage = storage

    def prepare_site(self, cluster):
        """Hook: runs after the site exists, before the workers start."""

    def start_workers(self, cluster):
        """Hook: start the processes that run jobs that do not run (here: the worker
        instances) and wait for them."""
        names = [name for name in ("worker1", "worker2") if not running(cluster, name)]
        for name in names:
            cluster.start_instance(name, wait=False)
        for name in names:
            cluster.wait_for(name)

    def stop_workers(self, cluster):
        """Hook: stop the processes that start_workers starts."""
        for name in ("worker1", "worker2"):
            cluster.stop(name)

    def restore(self, workers=True):
        """Bring the cluster to the layer's state, whatever an earlier test left: the storage
        server running, and the workers (or, ``workers`` false, none): each test starts there."""
        cluster = self["cluster"]
        if not storage_running(cluster):
            cluster.start_storage()
        if workers:
            self.start_workers(cluster)
        else:
            self.stop_workers(cluster)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="zasync-cluster-")
        cluster = Cluster(self.tmp, multi_db=self.multi_db, worker_config=FAST_WORKERS, storage=self.storage,
                          tied=True)
        cluster.write(workers=self.worker_instances)
        try:
            cluster.start_storage()
            # jobs of the default queue in parallel (1, the default, runs them one at a time)
            cluster.run_script("client", SCRIPTS / "create_site.py", "Plone", "admin:admin", "4")
            self.prepare_site(cluster)
            self.start_workers(cluster)
            self["db"] = cluster.open_db()
            self["conn"] = self["db"].open()
        except BaseException:
            cluster.stop_all()
            raise
        self["cluster"] = cluster

    def tearDown(self):
        transaction.abort()
        self["conn"].close()
        self["db"].close()
        self["cluster"].stop_all()
        if not os.environ.get("ZASYNC_KEEP_CLUSTER"):  # keep it to read the logs
            shutil.rmtree(self.tmp, ignore_errors=True)


def held_entries(directory, pids):
    """The entries of the jobs that worker processes ``pids`` hold inside their function while
    ``directory``/hold exists (tests.support.sample_jobs.mark_outside_too)."""
    entries = set()
    for pid in pids:
        path = Path(directory) / ("held-%d" % pid)
        if path.exists():
            entries.update(path.read_text().split())
    return entries


def running(cluster, name):
    """True if the cluster's process ``name`` was started and has not ended."""
    process = cluster.processes.get(name)
    return process is not None and process.poll() is None


def storage_running(cluster):
    if cluster.postgres is None:
        return running(cluster, "zeo")
    pid = cluster.postgres.pid()
    return pid is not None and pid_alive(pid)


SINGLE_DB_CLUSTER = ClusterLayer(False, "collective.zasync:ZEOCluster")
MULTI_DB_CLUSTER = ClusterLayer(True, "collective.zasync:ZEOClusterMultiDB")
RELSTORAGE_CLUSTER = ClusterLayer(False, "collective.zasync:RelStorageCluster", storage="relstorage")
RELSTORAGE_MULTI_DB_CLUSTER = ClusterLayer(True, "collective.zasync:RelStorageClusterMultiDB", storage="relstorage")


def server_venv(process):
    """The virtualenv whose Python runs ``process`` (a console script: its interpreter)."""
    interpreter = Path("/proc/%d/cmdline" % process.pid).read_bytes().split(b"\0")[0].decode()
    return Path(interpreter).parent.parent


class ClusterTestCase(unittest.TestCase):
    multi_db = False
    time_limit = 15 * 60  # seconds (tests/support/timelimit.py); real processes on a busy machine
    needs_workers = True  # False: its tests start with no worker running

    def setUp(self):
        # Independent of the tests before it: one that failed half-way (a worker killed, the
        # storage stopped) does not make the next ones fail too.
        self.layer.restore(workers=self.needs_workers)

    @property
    def cluster(self):
        return self.layer["cluster"]

    @property
    def conn(self):
        return self.layer["conn"]

    @property
    def tmp(self):
        return self.layer.tmp

    # -- helpers -------------------------------------------------------------------

    def queue(self, function, count, *args):
        """Queue jobs through the client process; return their ids."""
        out = self.cluster.run_script(
            "client", TESTS / "queue_jobs.py", "Plone", "admin", function, count, *args
        )
        return out.split()

    def root(self):
        transaction.begin()
        conn = self.conn.get_connection("async") if self.multi_db else self.conn
        return conn.root()[interfaces.KEY]

    def jobs(self, ids):
        queue = self.root().queues[""]
        return [queue.get(job_id) for job_id in ids]

    def wait_until(self, condition, seconds=90, what="condition"):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.2)
        self.fail("Timed out waiting for %s" % what)

    def wait_completed(self, ids, seconds=90):
        def done():
            return all(job is not None and job.status == interfaces.COMPLETED for job in self.jobs(ids))

        self.wait_until(done, seconds, "%d jobs to complete" % len(ids))
        return self.jobs(ids)

    def marks(self, prefix):
        """{entry: how many times a job's effects were committed} for ``prefix``."""
        transaction.begin()
        marks = getattr(self.conn.root()["Application"]["Plone"], "_zasync_test_marks", {})
        return {key: count for key, count in marks.items() if key.startswith(prefix)}

    def worker_uuid(self, name):
        return (Path(self.tmp) / name / "var" / "worker-uuid.txt").read_text().strip()


STOP_TIMEOUT = float(FAST_WORKERS["stop-timeout"])
COMMAND = str(BIN / "zasync-worker")


class WorkerCommandLayer(ClusterLayer):
    """ZEO, the site, and zasync-worker with the client's zope.conf (no worker instances)."""

    worker_instances = 0

    def start_workers(self, cluster):
        if running(cluster, "zasync-worker"):
            return
        client = cluster.root / "client"
        before = len(read_log(cluster))
        # The same file as the <environment> of its zope.conf, which would win anyway.
        env = dict(os.environ, ZASYNC_UUID=str(client / "var" / "worker-uuid.txt"))
        env.pop("ZASYNC_DISABLE", None)
        conf = str(client / "etc" / "zope.conf")
        cluster.metrics_port = free_port_pair()
        command = [COMMAND, "-C", conf, "--processes", "2", "--threads", "2",
                   "--metrics-port", str(cluster.metrics_port)]
        with open(client / "var" / "zasync-worker.out", "ab") as out:
            # Its worker processes end with the test run too (they outlive a killed supervisor).
            cluster.processes["zasync-worker"] = process = popen_group(
                command, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 180
        while read_log(cluster)[before:].count("runs jobs as worker") < 2:  # both processes
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("zasync-worker did not start (exit code %s):\n%s"
                                   % (process.poll(), read_log(cluster)[-5000:]))
            time.sleep(0.2)

    def stop_workers(self, cluster):
        cluster.stop("zasync-worker", timeout=STOP_TIMEOUT + 15)


def free_port_pair():
    """A port P such that P and P + 1 are free (the metrics ports of processes 1 and 2)."""
    port = free_port()
    while True:  # free_port walks up: two in a row are a pair
        following = free_port()
        if following == port + 1:
            return port
        port = following


def read_log(cluster):
    """The command's log: the client instance's zope.ini's, in a file of its own beside the
    instance's (zasync-worker- before its name)."""
    path = cluster.root / "client" / "var" / "zasync-worker-instance.log"
    return path.read_text() if path.exists() else ""


WORKER_COMMAND = WorkerCommandLayer(False, "collective.zasync:WorkerCommand")
