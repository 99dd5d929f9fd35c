"""Retrying a failed batch (admin.retry, the control panel's and the REST API's "retry")."""

from collective.zasync.client import admin
from collective.zasync import interfaces
from tests.support import sample_jobs
from collective.zasync.core.failure import Failure
from collective.zasync.client.service import makeJob
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from tests.support import input_jobs
from tests.support.base import WorkerTestCase

import transaction


class TestBatchRetry(WorkerTestCase):
    def setUp(self):
        super().setUp()
        self.queue = self.service.getQueues()[""]

    def counts(self):
        """(completed, failed) jobs filed in the queue, by both ways of counting."""
        counts = self.queue.completed_count(), self.queue.failed_count()
        self.assertEqual((len(self.queue.completed), len(self.queue.failed)), counts)
        return counts

    def log(self):
        transaction.begin()
        return list(getattr(self.portal, "_zasync_test_log", []))

    def failed_batch(self, queue_batch, third, filed):
        """Queue a, b, c (b fails until the site is marked; c too if ``third`` does), run, mark."""
        batch = queue_batch(
            makeJob(sample_jobs.log_id, self.portal, "a"),
            makeJob(input_jobs.log_when_marked, self.portal, "b"),
            makeJob(third, self.portal, "c"),
        )
        with self.assertLogs("collective.zasync", level="ERROR"):
            wait_for_result(batch)
        wait_until(lambda: self.counts() == filed, "%s completed, %s failed" % filed)
        self.assertEqual(self.log(), ["a"])
        setattr(self.portal, input_jobs.MARKER, True)
        return batch

    def serial_batch(self):
        """The serial batch a, b, c, failed at b; c was not run."""
        batch = self.failed_batch(self.service.queueSerialJobs, sample_jobs.log_id, (1, 3))
        self.assertIsInstance(batch.result, Failure)
        self.assertIn("Not run", str(batch.subjobs[2].result))
        return batch

    def assert_ran_again_in_order(self, batch):
        first, second, third = batch.subjobs
        first_ended = first.ended
        result = wait_for_result(batch)
        self.assertEqual(result, [first, second, third])
        self.assertEqual([sub.result for sub in result], ["a", "b", "c"])
        self.assertEqual(self.log(), ["a", "b", "c"])  # a is not run again
        self.assertEqual(first.ended, first_ended)
        self.assertLessEqual(second.ended, third.started)
        wait_until(lambda: self.counts() == (4, 0), "the batch and its 3 jobs filed once")

    def test_serial_batch_runs_again_from_the_failed_job(self):
        batch = self.serial_batch()
        self.assertIs(admin.retry(batch), batch)
        self.assert_ran_again_in_order(batch)

    def test_a_job_of_the_batch_removed_since_it_succeeded_is_not_listed_again(self):
        batch = self.serial_batch()
        first = batch.subjobs[0]
        self.assertEqual(admin.remove_finished(self.queue), 1)  # a, which succeeded
        self.assertIsNone(self.queue.get(first.id))
        admin.retry(batch)
        transaction.commit()
        wait_for_result(batch)
        wait_until(lambda: self.counts() == (3, 0), "the batch and its 2 jobs run again filed")
        self.assertIsNone(self.queue.get(first.id))  # (listed again, it was kept for ever)
        self.assertEqual([self.queue.get(sub.id) for sub in batch.subjobs[1:]], list(batch.subjobs[1:]))

    def test_retrying_a_failed_job_of_a_finished_batch_retries_the_batch(self):
        batch = self.serial_batch()
        self.assertIs(admin.retry(batch.subjobs[2]), batch)  # the "Not run" one
        self.assert_ran_again_in_order(batch)

    def test_parallel_batch_runs_again_only_the_failed_jobs(self):
        batch = self.failed_batch(
            self.service.queueParallelJobs, input_jobs.log_when_marked, (2, 2)
        )  # a and the batch completed; b and c failed
        self.assertEqual([sub.failed for sub in batch.result], [False, True, True])
        self.assertIs(admin.retry(batch), batch)
        result = wait_for_result(batch)
        self.assertEqual(result, list(batch.subjobs))
        self.assertEqual([sub.result for sub in result], ["a", "b", "c"])
        self.assertEqual(sorted(self.log()), ["a", "b", "c"])  # a is not run again
        wait_until(lambda: self.counts() == (4, 0), "the batch and its 3 jobs filed once")

    def test_a_job_of_an_unfinished_batch_is_not_retried(self):
        sample_jobs.gate.clear()
        batch = self.service.queueParallelJobs(
            makeJob(sample_jobs.fail, self.portal, "fails at once"),
            makeJob(sample_jobs.report_progress, self.portal),  # runs until the gate opens
        )
        failed = batch.subjobs[0]
        try:
            with self.assertLogs("collective.zasync", level="ERROR"):
                transaction.commit()
                wait_until(lambda: failed.status == interfaces.COMPLETED, "the failing job")
            with self.assertRaises(admin.ActionError) as raised:
                admin.retry(failed)
            self.assertIn("has not finished", str(raised.exception))
        finally:
            sample_jobs.gate.set()
        self.assertEqual(wait_for_result(batch), list(batch.subjobs))

    def test_a_batch_without_failures_is_not_retried(self):
        batch = self.service.queueParallelJobs(makeJob(sample_jobs.add, self.portal, 1))
        wait_for_result(batch)
        with self.assertRaises(admin.ActionError) as raised:
            admin.retry(batch)
        self.assertIn("Only a failed job can be retried", str(raised.exception))
