"""Retry policies (retry_on): more attempts after given errors, none of a failed attempt's effects kept."""

from collective.zasync.client import admin
from collective.zasync.client import reading
from collective.zasync.client.service import makeJob
from collective.zasync.core.failure import Failure
from collective.zasync.core.job import state_name
from collective.zasync.core.job import utcnow
from collective.zasync.core.retrying import pause
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from datetime import timedelta
from tests.support import runner_jobs
from tests.support.base import WorkerTestCase
from tests.support.sample_jobs import marks
from urllib.error import URLError
from zope.component import getMultiAdapter

import transaction


class TestRetryPolicy(WorkerTestCase):
    def test_an_error_of_retry_on_runs_the_job_again_without_its_effects(self):
        job = self.service.queueJob(runner_jobs.flaky, self.portal, "a", 2,
                                    retry_on=(URLError, TimeoutError), max_attempts=3, retry_backoff=0.01)
        self.assertEqual(job.retry_on, ("urllib.error:URLError", "builtins:TimeoutError"))
        self.assertEqual(job.kwargs, {})  # the policy is the service's, not the function's
        with self.assertLogs("collective.zasync", level="WARNING") as logs:
            self.assertEqual(wait_for_result(job), "ok on attempt 3")
        self.assertEqual((job.attempts, job.failed_attempts), (3, 2))
        self.assertEqual(job.last_error, "URLError: <urlopen error attempt 2: the remote service is down>")
        self.assertEqual(marks(self.portal), {"a-3": 1}, "the failed attempts left nothing")
        self.assertIn("attempt 2 of 3 failed", "\n".join(logs.output))
        detail = reading.job_detail(job)  # the job page and GET @zasync-jobs/<id>
        self.assertEqual((detail["retry_on"], detail["max_attempts"], detail["failed_attempts"]),
                         (["urllib.error:URLError", "builtins:TimeoutError"], 3, 2))
        self.assertEqual((detail["last_error"], detail["next_try"]), (job.last_error, job.next_try))

    def test_after_the_last_attempt_it_fails_with_the_last_error(self):
        job = self.service.queueJob(runner_jobs.flaky, self.portal, "b", 5,
                                    retry_on=URLError, max_attempts=2, retry_backoff=0.01)
        with self.assertLogs("collective.zasync", level="ERROR"):
            result = wait_for_result(job)
        self.assertIsInstance(result, Failure)
        self.assertIs(result.type, URLError)
        self.assertIn("attempt 2:", str(result))
        self.assertEqual((job.attempts, job.failed_attempts), (2, 1))
        self.assertEqual(marks(self.portal), {})

    def test_other_errors_fail_at_once(self):
        job = self.service.queueJob(runner_jobs.fail_with, self.portal, "ValueError",
                                    retry_on=runner_jobs.RemoteDown, max_attempts=4, retry_backoff=0.01)
        with self.assertLogs("collective.zasync", level="ERROR"):
            self.assertIs(wait_for_result(job).type, ValueError)
        self.assertEqual((job.attempts, job.failed_attempts), (1, 0))

    def test_the_next_try_is_delayed_by_the_backoff_and_the_thread_goes_on(self):
        before = utcnow()
        job = self.service.queueJob(runner_jobs.fail_with, self.portal, "RemoteDown",
                                    retry_on=runner_jobs.RemoteDown, retry_backoff=timedelta(hours=1))
        self.assertEqual((job.max_attempts, job.retry_backoff, job.retry_backoff_max), (3, 3600.0, 3600.0))
        transaction.commit()
        with self.assertLogs("collective.zasync", level="WARNING"):
            wait_until(lambda: job.failed_attempts == 1, "the first attempt to fail")
        after = utcnow()
        # First pause: between half and all of retry_backoff (jitter).
        self.assertTrue(before + timedelta(minutes=30) <= job.next_try <= after + timedelta(hours=1),
                        (before, job.next_try, after))
        self.assertEqual(job.begin_after, job.next_try)
        self.assertEqual(state_name(job), "delayed")
        self.assertIsNone(job.worker_uuid)
        self.assertIn(job, list(self.service.getQueues()[""].pending()))
        request = self.layer["request"]
        request.form["id"] = job.id
        page = getMultiAdapter((self.portal, request), name="zasync-job")()  # the job page
        for shown in ('id="zasync-job-next-try"', "1 failed of 3 attempts", "RemoteDown: failing on purpose",
                      "tests.support.runner_jobs:RemoteDown"):
            self.assertIn(shown, page)
        # The worker thread did not wait for it: another job runs meanwhile.
        other = self.service.queueJob(runner_jobs.add_title, self.portal, "!")
        self.assertTrue(wait_for_result(other).endswith("!"))
        self.assertEqual(marks(self.portal), {})
        admin.cancel(job)  # waiting for its next try: cancelled at once
        transaction.commit()
        self.assertEqual(state_name(job), "failed")
        self.assertEqual(len(self.service.getQueues()[""]), 0)

    def test_a_job_of_a_serial_batch_tries_again_and_the_batch_goes_on_after_it(self):
        batch = self.service.queueSerialJobs(
            makeJob(runner_jobs.flaky, self.portal, "first", 1, retry_on=URLError, retry_backoff=0.01),
            makeJob(runner_jobs.flaky, self.portal, "second", 0),
        )
        with self.assertLogs("collective.zasync", level="WARNING"):
            subjobs = wait_for_result(batch, seconds=20)
        self.assertEqual([job.result for job in subjobs], ["ok on attempt 2", "ok on attempt 1"])
        self.assertEqual(subjobs[1].retry_on, ())
        self.assertEqual(marks(self.portal), {"first-2": 1, "second-1": 1})

    def test_backoff_formula_doubles_up_to_the_cap(self):
        class Policy:
            retry_backoff = 10.0
            retry_backoff_max = 25.0

        for failed, low, high in ((1, 5.0, 10.0), (2, 10.0, 20.0), (3, 12.5, 25.0), (9, 12.5, 25.0)):
            for _ in range(20):
                self.assertTrue(low <= pause(Policy, failed) <= high, (failed, pause(Policy, failed)))

    def test_bad_policies_fail_at_queue_time(self):
        class LocalError(Exception):
            pass

        cases = [
            (dict(retry_on="URLError"), TypeError, "exception classes"),
            (dict(retry_on=(URLError, 3)), TypeError, "exception classes"),
            (dict(retry_on=KeyboardInterrupt), TypeError, "subclasses of Exception"),
            (dict(retry_on=LocalError), ValueError, "could not import it back"),
            (dict(max_attempts=3), ValueError, "pass retry_on="),
            (dict(retry_on=URLError, max_attempts=0), ValueError, "at least 1"),
            (dict(retry_on=URLError, retry_backoff="10"), ValueError, "seconds or a timedelta"),
        ]
        for kwargs, error, message in cases:
            with self.assertRaises(error, msg=kwargs) as raised:
                self.service.queueJob(runner_jobs.flaky, self.portal, "x", 0, **kwargs)
            self.assertIn(message, str(raised.exception))

    def test_run_again_gives_a_fresh_set_of_attempts(self):
        job = self.service.queueJob(runner_jobs.flaky, self.portal, "c", 5,
                                    retry_on=URLError, max_attempts=2, retry_backoff=0.01)
        with self.assertLogs("collective.zasync", level="ERROR"):
            wait_for_result(job)
        admin.retry(job)  # the administrator's Retry: counters start again
        self.assertEqual((job.failed_attempts, job.last_error, job.next_try), (0, None, None))
        with self.assertLogs("collective.zasync", level="ERROR"):
            self.assertIn("attempt 4:", str(wait_for_result(job)))
        self.assertEqual((job.attempts, job.earlier_attempts, job.failed_attempts), (4, 2, 1))
