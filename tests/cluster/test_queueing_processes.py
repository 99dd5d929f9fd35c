"""Queueing never conflicts: 4 processes queue 1,000 jobs each, one per transaction, as requests do.

Real processes, on a stock ZEO server (ZEO alone: it cannot import
collective.zasync) and on RelStorage with PostgreSQL: first with no worker
running (every job waits), then with two workers running them. Each queueing
process (tests/support/queue_counting_conflicts.py) retries a commit that raises
ConflictError, as Zope's publisher retries a request, and counts it; the
counts are printed with the test's output and must be 0.
"""

from collective.zasync.dev.cluster import BIN
from collective.zasync.dev.lifeline import tied
from pathlib import Path
from tests.support.clusters import ClusterLayer
from tests.support.clusters import TESTS
from tests.support.clusters import ClusterTestCase
from tests.support.clusters import SCRIPTS

import json
import os
import subprocess


HERE = Path(__file__).parent.parent / "support"  # the scripts the instances run
PROCESSES = 4
JOBS = 1000


class QueueingLayer(ClusterLayer):
    """The cluster with its workers written but not started: the tests start them."""

    def prepare_site(self, cluster):
        # the marks BTree, created once before the racing processes
        cluster.run_script("client", TESTS / "queue_jobs.py", "Plone", "admin", "mark", 0)

    def start_workers(self, cluster):
        pass


QUEUEING_ZEO = QueueingLayer(False, "collective.zasync:QueueingStockZEO")
QUEUEING_RELSTORAGE = QueueingLayer(False, "collective.zasync:QueueingRelStorage", storage="relstorage")


class QueueingTests:
    needs_workers = False  # test_2 starts them

    def queue_from_processes(self, prefix):
        """Run the queueing processes side by side; return their results."""
        conf = Path(self.tmp) / "client" / "etc" / "zope.conf"
        env = dict(os.environ, ZASYNC_DISABLE="1")
        processes = [
            subprocess.Popen(
                [str(BIN / "zconsole"), "run", str(conf), str(HERE / "queue_counting_conflicts.py"),
                 "Plone", "admin", "%s%d" % (prefix, number), str(JOBS)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=tied(),
            )
            for number in range(PROCESSES)
        ]
        results = []
        for process in processes:
            out, err = process.communicate(timeout=600)
            self.assertEqual(process.returncode, 0, err)
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results

    def report(self, what, results):
        conflicts = [result["conflicts"] for result in results]
        seconds = max(result["seconds"] for result in results)
        print("\n  [queueing] %s, %s: %d x %d jobs in %.1f s, ConflictErrors per process %s"
              % (self.layer.storage, what, PROCESSES, JOBS, seconds, conflicts), flush=True)
        self.assertEqual(conflicts, [0] * PROCESSES)
        ids = [job_id for result in results for job_id in result["ids"]]
        self.assertEqual(len(set(ids)), PROCESSES * JOBS)
        return ids

    def test_1_no_worker_running(self):
        waiting = len(self.root().queues[""])
        ids = self.report("no worker running", self.queue_from_processes("idle"))
        self.assertEqual(len(self.root().queues[""]), waiting + len(ids), "every job waits")
        self.assertFalse(self.root().workers)

    def test_2_two_workers_running(self):
        for name in ("worker1", "worker2"):
            self.cluster.start_instance(name, wait=False)
        for name in ("worker1", "worker2"):
            self.cluster.wait_for(name)
        self.report("two workers running", self.queue_from_processes("busy"))
        # (that every job then runs once, its effects committed once, is tests/cluster/test_chaos.py's)
        self.wait_until(lambda: self.root().queues[""].completed_count() > 0, 120, "the workers to run jobs")


class TestQueueingOnStockZEO(QueueingTests, ClusterTestCase):
    layer = QUEUEING_ZEO


class TestQueueingOnRelStorage(QueueingTests, ClusterTestCase):
    layer = QUEUEING_RELSTORAGE
