"""The worker's time limit: a job running too long fails, none of its work kept."""

from collective.zasync.core.failure import Failure
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from tests.support import sample_jobs
from tests.support.base import WorkerTestCase


class TestTimeLimit(WorkerTestCase):
    def test_job_running_too_long_fails_and_its_work_is_discarded(self):
        self.layer["zasync_dispatcher"].settings.time_limit = 1
        job = self.service.queueJob(sample_jobs.sleep_and_mark, self.portal, "overdue", "3")
        with self.assertLogs("collective.zasync", level="INFO") as logs:
            result = wait_for_result(job, seconds=30)
            self.assertIsInstance(result, Failure)
            self.assertIs(result.type, TimeoutError)
            self.assertIn("time limit of 1 s", str(result))
            # The thread runs the function to its end, then finds the job taken from it and
            # drops its work: what it says then, it says last.
            dropped = "Job %r was handed to another worker; not running it here." % job._p_oid
            wait_until(lambda: dropped in [record.getMessage() for record in logs.records],
                       "the thread to drop the overdue job's work")
        after = self.service.queueJob(sample_jobs.add, self.portal, 1)
        self.assertEqual(wait_for_result(after), 1)  # the worker goes on
        self.assertNotIn("overdue", dict(getattr(self.portal, "_zasync_test_marks", {})))
