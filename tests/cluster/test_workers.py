"""Real processes: a storage server, a client instance and two worker instances.

The storage server is a ZEO server or PostgreSQL (RelStorage). Jobs are queued
by the client (a ``zconsole run`` process), run by the workers (``runwsgi``
processes that include the worker ZCML), and checked from this process through
its own connection to the storage.
"""

from BTrees.OOBTree import OOBTree
from collective.zasync import interfaces
from collective.zasync.dev.cluster import Cluster
from pathlib import Path
from persistent import Persistent
from tests.support.clusters import ClusterTestCase
from tests.support.clusters import held_entries
from tests.support.clusters import MULTI_DB_CLUSTER
from tests.support.clusters import RELSTORAGE_CLUSTER
from tests.support.clusters import RELSTORAGE_MULTI_DB_CLUSTER
from tests.support.clusters import server_venv
from tests.support.clusters import SINGLE_DB_CLUSTER
from ZODB.POSException import ConflictError

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import transaction
import unittest


class WorkerTests:
    """What the workers do on any storage (mixed into a test case per storage)."""

    def test_1_jobs_from_another_process_run_once_spread_over_workers(self):
        # The marks' tree made first: two first jobs making it at once conflict on the site, and
        # after a conflict steering runs a function's jobs in one process (docs/design.md).
        site = self.conn.root()["Application"]["Plone"]
        if getattr(site, "_zasync_test_marks", None) is None:
            site._zasync_test_marks = OOBTree()
            transaction.commit()
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
        [spawner] = self.queue("tests.support.runner_jobs:queue_flaky", 1, "retried-", 12, 2)
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
        # in the cluster (core/alonegate.py) instead of failing.
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
        # (a job's ``alone`` ends with its run alone; ``alone_since`` says that it waited for one)
        self.assertTrue(any(job.alone_since for job in jobs), "no job conflicted: did both workers run jobs?")
        transaction.begin()
        hot = dict(self.conn.root()["Application"]["Plone"]._zasync_test_hot)
        self.assertEqual(hot.pop("count"), 12)
        self.assertEqual(hot, {"hot-%d" % n: 1 for n in range(12)})  # each job's effects once
        print("\n  %d of 12 jobs ran alone in the cluster, in %d processes"
              % (sum(bool(job.alone_since) for job in jobs), len({job.result for job in jobs})), flush=True)


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
