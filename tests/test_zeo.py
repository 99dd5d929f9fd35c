"""Real processes: a storage server, a client instance and two worker instances.

The storage server is a ZEO server or PostgreSQL (RelStorage). Jobs are queued
by the client (a ``zconsole run`` process), run by the workers (``runwsgi``
processes that include the worker ZCML), and checked from this process through
its own connection to the storage.
"""

from collective.zasync import interfaces
from collective.zasync.cluster import Cluster
from collective.zasync.cluster import pid_alive
from pathlib import Path
from persistent import Persistent
from plone.testing import Layer
from ZODB.POSException import ConflictError

import collective.zasync.scripts
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import transaction
import unittest


SCRIPTS = Path(collective.zasync.scripts.__file__).parent
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
    ``directory``/hold exists (tests.sample_jobs.mark_outside_too)."""
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
    time_limit = 15 * 60  # seconds (tests/timelimit.py); real processes on a busy machine
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


class WorkerTests:
    """What the workers do on any storage (mixed into a test case per storage)."""

    def test_1_jobs_from_another_process_run_once_spread_over_workers(self):
        ids = self.queue("sleep_and_mark", 20, "spread", "0.2")
        jobs = self.wait_completed(ids)
        self.assertTrue(all(not job.failed for job in jobs))
        self.assertEqual({job.attempts for job in jobs}, {1})
        used = {job.worker_uuid for job in jobs}
        self.assertEqual(used, {self.worker_uuid("worker1"), self.worker_uuid("worker2")})
        self.assertEqual(self.marks("spread-"), {"spread-%d" % n: 1 for n in range(20)})

    def test_2_sigkilled_worker_jobs_run_again_elsewhere_exactly_once(self):
        # The jobs that start wait inside their function while the file "hold" exists, and
        # say so (sample_jobs.mark_outside_too): worker1 is killed while one runs there.
        effects = Path(self.tmp) / "effects-killed"
        effects.mkdir()
        victim, pid = self.worker_uuid("worker1"), self.cluster.processes["worker1"].pid
        (effects / "hold").touch()
        try:
            ids = self.queue("mark_outside_too", 4, "killed", effects)
            self.wait_until(lambda: held_entries(effects, [pid]), 60, "a job running in worker1")
            self.cluster.stop("worker1", signal.SIGKILL)
        finally:
            (effects / "hold").unlink()
        interrupted = held_entries(effects, [pid])
        jobs = self.wait_completed(ids, seconds=120)
        self.assertEqual([str(job.result) for job in jobs if job.failed], [])
        again = {job.args[0]: (job.attempts, job.worker_uuid) for job in jobs if job.args[0] in interrupted}
        self.assertEqual(again, {entry: (2, self.worker_uuid("worker2")) for entry in interrupted})
        self.assertEqual(self.marks("killed-"), {"killed-%d" % n: 1 for n in range(4)})
        self.assertNotIn(victim, self.root().workers)

    def test_4_sigterm_lets_jobs_finish_and_unregisters(self):
        ids = self.queue("sleep_and_mark", 4, "terminated", "2")
        names = {self.worker_uuid(name): name for name in ("worker1", "worker2")}

        def running():
            return [job for job in self.jobs(ids) if job and job.status == interfaces.ACTIVE]

        self.wait_until(running, 60, "a job to start")
        leaving = running()[0].worker_uuid
        self.cluster.stop(names[leaving], signal.SIGTERM)
        jobs = self.wait_completed(ids)
        self.assertTrue(all(not job.failed for job in jobs))
        self.assertNotIn(leaving, self.root().workers)
        # the jobs it was running finished there: none was run twice
        self.assertEqual({job.attempts for job in jobs}, {1})
        self.assertEqual(self.marks("terminated-"), {"terminated-%d" % n: 1 for n in range(4)})

    def test_5_retry_policy_attempts_leave_no_effects_on_any_worker(self):
        [spawner] = self.queue("tests.runner_jobs:queue_flaky", 1, "retried-", 12, 2)
        [spawner] = self.wait_completed([spawner])
        jobs = self.wait_completed(spawner.result)
        self.assertEqual({job.result for job in jobs}, {"ok on attempt 3"})
        self.assertEqual({job.attempts for job in jobs}, {3})
        # Mostly (3, 2); if filing a job again keeps conflicting with the dispatchers, the
        # job is handed back instead: that start counts as an attempt with no error stored.
        self.assertTrue(all(1 <= job.failed_attempts <= 2 for job in jobs),
                        [(job.id, job.attempts, job.failed_attempts, job.last_error) for job in jobs])
        # Each job's two failed attempts were aborted: only the third one's mark is there.
        self.assertEqual(self.marks("retried-"), {"retried-%d-3" % n: 1 for n in range(12)})
        # Nothing is left queued; a claimed job's waiting entry stays until the finisher's
        # next pass drops it, so that pass is waited for.
        self.wait_until(lambda: sum(len(queue) for queue in self.root().queues.values()) == 0,
                        30, "the finisher to drop the claimed jobs' waiting entries")


class TestWorkers(WorkerTests, ClusterTestCase):
    layer = SINGLE_DB_CLUSTER

    def test_0_zeo_server_is_stock_if_asked(self):
        stock = server_venv(self.cluster.processes["zeo"]) != Path(sys.prefix)
        self.assertEqual(stock, self.cluster.stock_zeo)

    def test_3_zeo_restart_workers_reconnect(self):
        from ZEO.ClientStorage import ClientStorage
        from ZODB.utils import p64
        from ZODB.utils import u64

        address = ("127.0.0.1", self.cluster.zeo_port)
        early = ClientStorage(address, storage="1")
        first = early.new_oid()  # ZEO fetches 100 in advance; none gets committed
        self.cluster.stop("zeo")
        self.cluster.start_zeo()
        ids = self.queue("mark", 10, "after-restart")
        self.wait_until(early.is_connected, 30, "the reconnection")
        late = ClientStorage(address, storage="1")
        handed_out_after_restart = {late.new_oid() for _ in range(100)}
        after = early.new_oid()
        early.close()
        late.close()
        # The restarted server hands out the unused ids again: a client must not reuse them.
        self.assertNotEqual(after, p64(u64(first) + 1), "the prefetched ids survived the restart")
        self.assertNotIn(after, handed_out_after_restart)
        jobs = self.wait_completed(ids, seconds=120)
        self.assertEqual([str(job.result) for job in jobs if job.failed], [])
        self.assertEqual(self.marks("after-restart-"), {"after-restart-%d" % n: 1 for n in range(10)})

    def test_6_jobs_that_conflict_with_jobs_of_the_other_worker_all_complete(self):
        # Each job reads one counter, waits and writes it: two running at once in the two
        # worker processes conflict every time. With no conflict retries (the site's
        # setting, 0), a job that conflicts once is out of them: it runs once more alone
        # in the cluster (gate.py) instead of failing.
        from persistent.mapping import PersistentMapping

        transaction.begin()
        site = self.conn.root()["Application"]["Plone"]
        site._zasync_test_hot = PersistentMapping()
        setting = site.portal_registry.records["collective.zasync.max_retries"]
        setting.value, before = 0, setting.value
        transaction.commit()
        try:
            ids = self.queue("hot_write", 12, "hot", "0.3")
        finally:
            transaction.begin()
            setting.value = before
            transaction.commit()
        jobs = self.wait_completed(ids, seconds=180)
        self.assertEqual({job.max_retries for job in jobs}, {0})
        self.assertEqual([str(job.result) for job in jobs if job.failed], [])
        self.assertTrue(any(job.alone_since is not None for job in jobs), "no job conflicted: did both workers run jobs?")
        transaction.begin()
        hot = dict(self.conn.root()["Application"]["Plone"]._zasync_test_hot)
        self.assertEqual(hot.pop("count"), 12)
        self.assertEqual(hot, {"hot-%d" % n: 1 for n in range(12)})  # each job's effects once
        print("\n  %d of 12 jobs ran alone in the cluster, in %d processes"
              % (sum(job.alone_since is not None for job in jobs), len({job.result for job in jobs})), flush=True)


class TestWorkersRelStorage(WorkerTests, ClusterTestCase):
    layer = RELSTORAGE_CLUSTER


class TestMultiDatabase(ClusterTestCase):
    layer = MULTI_DB_CLUSTER
    multi_db = True

    def test_queue_lives_in_the_async_database(self):
        ids = self.queue("mark", 20, "multi")
        jobs = self.wait_completed(ids)
        self.assertTrue(all(not job.failed for job in jobs))
        self.assertEqual({job._p_jar.db().database_name for job in jobs}, {"async"})
        self.assertNotIn(interfaces.KEY, self.conn.root())
        self.assertEqual(self.marks("multi-"), {"multi-%d" % n: 1 for n in range(20)})


class TestMultiDatabaseRelStorage(TestMultiDatabase):
    layer = RELSTORAGE_MULTI_DB_CLUSTER


class Resolving(Persistent):
    """Resolves every write conflict, wherever this module can be imported."""

    def _p_resolveConflict(self, old, committed, new):
        return new


class TestStockZEOServer(unittest.TestCase):
    """The ZEO server of Plone's official image: ZEO alone (.venv-zeo), none of our code."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="zasync-stock-zeo-")
        self.cluster = Cluster(self.tmp, stock_zeo=True, tied=True)
        self.cluster.write_zeo()
        self.cluster.start_zeo()
        self.db = self.cluster.open_db()

    def tearDown(self):
        self.db.close()
        self.cluster.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_server_cannot_import_collective_zasync(self):
        venv = self.cluster.runzeo().parent.parent
        self.assertEqual(server_venv(self.cluster.processes["zeo"]), venv)
        self.assertNotEqual(venv, Path(sys.prefix))
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # as the server has it
        result = subprocess.run(
            [str(venv / "bin" / "python"), "-c", "import collective.zasync"],
            capture_output=True, text=True, env=env, cwd=self.tmp,
        )
        self.assertIn("No module named 'collective'", result.stderr)

    def conflict(self, change):
        """Make ``change(root, n)`` in two connections at once: the second commit's ConflictError, or None."""
        managers = [transaction.TransactionManager() for _ in range(2)]
        conns = [self.db.open(transaction_manager=manager) for manager in managers]
        try:
            for n, conn in enumerate(conns):
                change(conn.root(), n)
            managers[0].commit()
            try:
                managers[1].commit()
            except ConflictError as error:
                return error
        finally:
            for manager, conn in zip(managers, conns):
                manager.abort()
                conn.close()

    def test_conflicts_are_resolved_by_the_instance_that_commits(self):
        """The server imports neither this module nor Plone's classes (DateTime in the
        catalog's metadata): with ``client-conflict-resolution true`` (docs/deploy.md) the
        committing instance resolves conflicts, with every class at hand."""
        from BTrees.OOBTree import OOBTree

        self.assertIn("client-conflict-resolution true", (Path(self.tmp) / "zeo.conf").read_text())
        with self.db.transaction() as conn:
            conn.root()["tree"] = OOBTree()
            conn.root()["resolving"] = Resolving()

        def tree(root, n):
            root["tree"]["key%d" % n] = n

        def ours(root, n):
            root["resolving"].value = n

        self.assertIsNone(self.conflict(tree))  # distinct keys in one bucket: resolved
        self.assertIsNone(self.conflict(ours))  # resolved here: the server cannot import its class
