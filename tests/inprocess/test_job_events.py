"""IJobStarted (in the job's transaction; a veto) and IJobRetrying."""

from collective.zasync.interfaces import IJobRetrying
from collective.zasync.interfaces import IJobStarted
from collective.zasync.testing import wait_for_result
from plone.app.testing import TEST_USER_ID
from tests.support import runner_jobs
from tests.support.base import WorkerTestCase
from tests.support.sample_jobs import marks
from urllib.error import URLError
from zope.component import getGlobalSiteManager


class TestEvents(WorkerTestCase):
    def subscribe(self, handler, iface):
        gsm = getGlobalSiteManager()
        gsm.registerHandler(handler, (iface,))
        self.addCleanup(gsm.unregisterHandler, handler, (iface,))

    def test_job_started_in_the_jobs_transaction_and_a_veto(self):
        seen = []

        def started(event):
            seen.append((event.job.id, event.object is event.job, TEST_USER_ID in str(event.job.user_id)))
            if event.job.args[0] == "veto":
                raise PermissionError("vetoed by a subscriber")
            runner_jobs.mark(event.job, "started-" + event.job.args[0])

        self.subscribe(started, IJobStarted)
        job = self.service.queueJob(runner_jobs.flaky, self.portal, "run", 0)
        self.assertEqual(wait_for_result(job), "ok on attempt 1")
        vetoed = self.service.queueJob(runner_jobs.flaky, self.portal, "veto", 0)
        with self.assertLogs("collective.zasync", level="ERROR"):
            result = wait_for_result(vetoed)
        self.assertIs(result.type, PermissionError)
        self.assertEqual(seen, [(job.id, True, True), (vetoed.id, True, True)])
        # The subscriber's write is committed with the job's; a vetoed job did not run.
        self.assertEqual(marks(self.portal), {"started-run": 1, "run-1": 1})

    def test_job_retrying_tells_the_error_and_the_next_try(self):
        seen = []
        self.subscribe(
            lambda event: seen.append((str(event.error), event.next_try, event.job.failed_attempts)),
            IJobRetrying)
        self.subscribe(lambda event: 1 / 0, IJobRetrying)  # a failing one changes nothing
        job = self.service.queueJob(runner_jobs.flaky, self.portal, "d", 1,
                                    retry_on=URLError, retry_backoff=0.01)
        with self.assertLogs("collective.zasync", level="WARNING"):
            self.assertEqual(wait_for_result(job), "ok on attempt 2")
        self.assertEqual(len(seen), 1)
        error, next_try, failed = seen[0]
        self.assertIn("attempt 1", error)
        self.assertEqual((next_try, failed), (job.next_try, 1))
