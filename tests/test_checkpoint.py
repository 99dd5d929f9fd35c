"""Long jobs that commit in steps: api.checkpoint(state), in-process."""

from collective.zasync import actions
from collective.zasync import api
from collective.zasync.failure import Failure
from collective.zasync.testing import wait_for_result
from tests import content_jobs
from tests.base import WorkerTestCase
from tests.test_worker_command import WORKER_COMMAND
from tests.test_zeo import ClusterTestCase
from tests.test_zeo import TESTS

import os
import signal
import transaction


class TestCheckpoint(WorkerTestCase):
    def setUp(self):
        super().setUp()
        content_jobs.prepare_import(self.portal)
        self.imported = self.portal._zasync_test_imported

    def test_a_job_without_failure_commits_every_step_and_its_result(self):
        job = self.service.queueJob(content_jobs.import_items, self.portal, 1000, 100)
        self.assertEqual(wait_for_result(job), {"imported": 1000, "resumed_from": 0})
        self.assertEqual(job.checkpoints, 10)
        self.assertEqual(job.checkpoint_state, 1000)
        self.assertEqual(set(self.imported.values()), {1})

    def test_a_failure_after_checkpoints_fails_the_job_and_keeps_their_work(self):
        job = self.service.queueJob(content_jobs.import_then_fail, self.portal, 1000, 100, 250)
        with self.assertLogs("collective.zasync", level="ERROR"):
            result = wait_for_result(job)
        self.assertIsInstance(result, Failure)
        self.assertIn("item 250 cannot be imported", str(result))
        # the two steps committed remain; the work after the last checkpoint is gone
        self.assertEqual(job.checkpoint_state, 200)
        self.assertEqual(sorted(self.imported.keys()), list(range(200)))
        # a retry resumes from the last checkpoint: each item is imported once
        actions.retry(job)
        self.assertEqual(wait_for_result(job), {"imported": 1000, "resumed_from": 200})
        self.assertEqual(len(self.imported), 1000)
        self.assertEqual(set(self.imported.values()), {1})

    def test_a_conflict_after_a_checkpoint_runs_again_from_it(self):
        job = self.service.queueJob(content_jobs.import_then_conflict, self.portal, 1000, 100, 450)
        self.assertEqual(wait_for_result(job), {"imported": 1000, "resumed_from": 400})
        self.assertEqual(job.retries, 1)
        self.assertEqual(set(self.imported.values()), {1})
        self.assertEqual(len(self.imported), 1000)

    def test_outside_a_job(self):
        with self.assertRaises(RuntimeError):
            api.checkpoint(1)
        with self.assertRaises(RuntimeError):
            api.get_checkpoint()
        transaction.abort()


class TestCheckpointedImportKilledHalfway(ClusterTestCase):
    """10,000 items, a checkpoint every 500, the worker process SIGKILLed halfway
    (zasync-worker --processes 2: test_worker_command's layer, no server of its own)."""

    layer = WORKER_COMMAND

    def test_each_item_is_imported_once(self):
        # (zasync-worker runs: ClusterTestCase.setUp started it again if a test had stopped it)
        out = self.cluster.run_script("client", TESTS / "queue_import.py", "Plone", "admin",
                                      "10000", "500", "5250")
        job_id = out.split()[-1]

        def holding():
            job = self.root().queues[""].get(job_id)
            return job is not None and job.checkpoint_state == 5000

        self.wait_until(holding, 60, "the import to hold at item 5,250, after checkpoint 5,000")
        job = self.root().queues[""].get(job_id)
        victim = [record for record in self.root().workers.values() if record.uuid == job.worker_uuid][0]
        os.kill(victim.pid, signal.SIGKILL)  # items 5,000 to 5,249 are imported, not committed
        job = self.wait_completed([job_id], 90)[0]
        self.assertEqual(job.result, {"imported": 10000, "resumed_from": 5000})
        self.assertEqual(job.attempts, 2)
        self.assertEqual(job.checkpoint_state, 10000)
        self.assertEqual(job.checkpoints, 20)  # 10 before the kill, 10 after: none twice
        transaction.begin()
        imported = self.conn.root()["Application"]["Plone"]._zasync_test_imported
        self.assertEqual(len(imported), 10000)
        self.assertEqual(set(imported.values()), {1})
