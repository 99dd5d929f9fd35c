"""Long jobs that commit in steps: api.checkpoint(state), in-process."""

from collective.zasync import api
from collective.zasync.client import admin
from collective.zasync.core.failure import Failure
from collective.zasync.testing import wait_for_result
from tests.support import content_jobs
from tests.support.base import WorkerTestCase

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
        admin.retry(job)
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
