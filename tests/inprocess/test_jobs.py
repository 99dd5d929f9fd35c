"""Jobs run through a real ZODB by a worker running in the test process."""

from collective.zasync import interfaces
from tests.support import sample_jobs
from collective.zasync.core.failure import Failure
from collective.zasync.client.service import makeJob
from collective.zasync.testing import wait_for_result
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from AccessControl import Unauthorized
from plone import api
from plone.app.testing import login
from plone.app.testing import logout
from plone.app.testing import SITE_OWNER_NAME
from plone.app.testing import TEST_USER_ID
from plone.app.testing import TEST_USER_NAME
from zope.component import getGlobalSiteManager
from tests.support.base import WorkerTestCase

import logging
import transaction


class JobTestCase(WorkerTestCase):
    def setUp(self):
        super().setUp()
        self.app = self.layer["app"]
        self.async_ = self.service

    def log(self):
        transaction.begin()
        return list(getattr(self.portal, "_zasync_test_log", []))


class TestQueueing(JobTestCase):
    def test_job_runs_after_commit_with_site_request_and_user(self):
        job = self.async_.queueJob(sample_jobs.whoami, self.portal)
        self.assertEqual(job.status, interfaces.PENDING)
        result = wait_for_result(job)
        self.assertEqual(
            result,
            {"user": TEST_USER_NAME, "site": "plone", "request": True, "context": "/plone"},
        )
        self.assertEqual(job.status, interfaces.COMPLETED)
        self.assertEqual(job.worker_uuid, self.layer.worker_uuid)

    def test_aborted_transaction_leaves_no_job(self):
        queue = self.async_.getQueues()[""]
        before = len(queue)
        self.async_.queueJob(sample_jobs.log_id, self.portal, "aborted")
        self.assertEqual(len(queue), before + 1)
        transaction.abort()
        self.assertEqual(len(self.async_.getQueues()[""]), before)
        marker = self.async_.queueJob(sample_jobs.log_id, self.portal, "committed")
        wait_for_result(marker)
        self.assertEqual(self.log(), ["committed"])

    def test_arguments_and_return_value(self):
        job = self.async_.queueJob(sample_jobs.add, self.portal, 2, b=40)
        self.assertEqual(wait_for_result(job), 42)

    def test_failure_is_stored_with_traceback_and_logged_once(self):
        job = self.async_.queueJob(sample_jobs.fail, self.portal, "it broke")
        with self.assertLogs("collective.zasync", level="ERROR") as logs:
            result = wait_for_result(job)
        self.assertIsInstance(result, Failure)
        self.assertIs(result.type, ValueError)
        self.assertEqual(str(result), "ValueError: it broke")
        self.assertIn("raise ValueError(message)", result.getTraceback())
        errors = [r for r in logs.records if r.levelno == logging.ERROR]
        self.assertEqual(len(errors), 1)
        self.assertIn(job.id, errors[0].getMessage())

    def test_persistent_argument_is_passed_by_reference(self):
        api.content.create(self.portal, "Document", id="doc", title="Old")
        job = self.async_.queueJob(sample_jobs.set_title, self.portal.doc, "New")
        self.assertEqual(wait_for_result(job), "New")
        transaction.begin()
        self.assertEqual(self.portal.doc.Title(), "New")


class TestSecurity(JobTestCase):
    def test_member_cannot_do_more_than_in_a_request(self):
        api.user.create(email="m@example.org", username="member", password="secret123", roles=("Member",))
        login(self.portal, "member")
        job = self.async_.queueJob(sample_jobs.create_document, self.portal, "by-member")
        result = wait_for_result(job)
        self.assertIsInstance(result, Failure)
        self.assertIs(result.type, Unauthorized)
        self.assertNotIn("by-member", self.portal.objectIds())

    def test_manager_gets_the_document(self):
        job = self.async_.queueJob(sample_jobs.create_document, self.portal, "by-manager")
        self.assertEqual(wait_for_result(job), "by-manager")
        transaction.begin()
        self.assertIn("by-manager", self.portal.objectIds())
        self.assertEqual(
            self.portal["by-manager"].Creator(), TEST_USER_ID
        )

    def test_anonymous_runs_as_anonymous(self):
        logout()
        job = self.async_.queueJob(sample_jobs.whoami, self.portal)
        self.assertEqual(wait_for_result(job)["user"], "Anonymous User")

    def test_zope_root_user_is_restored_from_the_root_user_folder(self):
        login(self.app, SITE_OWNER_NAME)
        job = self.async_.queueJob(sample_jobs.whoami, self.portal)
        self.assertEqual(job.userfolder_path, "/acl_users")
        self.assertEqual(wait_for_result(job)["user"], SITE_OWNER_NAME)

    def test_deleted_user_fails_with_a_message_naming_the_user(self):
        api.user.create(email="g@example.org", username="gone", password="secret123", roles=("Manager",))
        login(self.portal, "gone")
        job = self.async_.queueJob(sample_jobs.create_document, self.portal, "never")
        login(self.portal, TEST_USER_NAME)
        api.user.delete(username="gone")
        result = wait_for_result(job)
        self.assertIsInstance(result, Failure)
        self.assertIn("'gone'", str(result))
        self.assertIn("no longer exists", str(result))
        self.assertNotIn("never", self.portal.objectIds())


class TestCallbacksAndEvents(JobTestCase):
    def test_callback_gets_the_result(self):
        job = self.async_.queueJob(sample_jobs.add, self.portal, 1, 2)
        callback = job.addCallback(sample_jobs.record_callback)
        self.assertEqual(wait_for_result(job), 3)
        self.assertEqual(callback.result, "called back with 3")
        self.assertEqual(self.log(), [("callback", 3)])

    def test_add_callbacks_success_and_failure(self):
        good = self.async_.queueJob(sample_jobs.add, self.portal, 1)
        good.addCallbacks(success=sample_jobs.record_callback, failure=sample_jobs.record_failure)
        bad = self.async_.queueJob(sample_jobs.fail, self.portal, "nope")
        bad.addCallbacks(success=sample_jobs.record_callback, failure=sample_jobs.record_failure)
        with self.assertLogs("collective.zasync", level="ERROR"):
            wait_for_result(good)
            wait_for_result(bad)
        self.assertCountEqual(self.log(), [("callback", 1), ("failure", "ValueError: nope")])

    def test_events_carry_result_and_job(self):
        seen = []
        gsm = getGlobalSiteManager()

        def on_success(event):
            seen.append(("success", event.object, event.job.id))

        def on_failure(event):
            seen.append(("failure", str(event.object), event.job.id))

        gsm.registerHandler(on_success, (interfaces.IJobSuccess,))
        gsm.registerHandler(on_failure, (interfaces.IJobFailure,))
        try:
            good = self.async_.queueJob(sample_jobs.add, self.portal, 5)
            bad = self.async_.queueJob(sample_jobs.fail, self.portal, "x")
            with self.assertLogs("collective.zasync", level="ERROR"):
                wait_for_result(good)
                wait_for_result(bad)
        finally:
            gsm.unregisterHandler(on_success, (interfaces.IJobSuccess,))
            gsm.unregisterHandler(on_failure, (interfaces.IJobFailure,))
        self.assertCountEqual(
            seen, [("success", 5, good.id), ("failure", "ValueError: x", bad.id)]
        )


class TestDelays(JobTestCase):
    def test_not_started_before_begin_after(self):
        begin = datetime.now(timezone.utc) + timedelta(seconds=1.5)
        job = self.async_.queueJobWithDelay(None, begin, sample_jobs.add, self.portal, 1)
        wait_for_result(job)
        self.assertGreaterEqual(job.started, begin)

    def test_timeout_when_it_cannot_start_in_time(self):
        begin = datetime.now(timezone.utc) - timedelta(minutes=10)
        job = self.async_.queueJobWithDelay(
            timedelta(minutes=1), begin, sample_jobs.log_id, self.portal, "late"
        )
        result = wait_for_result(job)
        self.assertIsInstance(result, Failure)
        self.assertIs(result.type, TimeoutError)
        self.assertIn("could not start before", str(result))
        self.assertEqual(self.log(), [])


class TestQueuesAndQuotas(JobTestCase):
    def test_named_queue(self):
        self.async_.createQueue("reports")
        job = self.async_.queueJobInQueue("reports", (), sample_jobs.add, self.portal, 7)
        self.assertEqual(job.queue_name, "reports")
        self.assertEqual(wait_for_result(job), 7)

    def test_quota_limits_running_jobs(self):
        queue = self.async_.createQueue("serialized")
        queue.quotas["one"] = 1
        jobs = [
            self.async_.queueJobInQueue("serialized", ("one",), sample_jobs.sleep, self.portal, 0.3)
            for _ in range(3)
        ]
        for job in jobs:
            wait_for_result(job)
        spans = sorted((job.started, job.ended) for job in jobs)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            self.assertGreaterEqual(start, end)


class TestBatches(JobTestCase):
    def test_serial_jobs_run_in_order(self):
        batch = self.async_.queueSerialJobs(
            *(makeJob(sample_jobs.log_id, self.portal, n) for n in range(4))
        )
        result = wait_for_result(batch)
        self.assertEqual([sub.result for sub in result], [0, 1, 2, 3])
        self.assertEqual(self.log(), [0, 1, 2, 3])

    def test_serial_failure_stops_the_rest(self):
        batch = self.async_.queueSerialJobs(
            makeJob(sample_jobs.log_id, self.portal, "first"),
            makeJob(sample_jobs.fail, self.portal, "second failed"),
            makeJob(sample_jobs.log_id, self.portal, "third"),
        )
        with self.assertLogs("collective.zasync", level="ERROR"):
            result = wait_for_result(batch)
        self.assertIsInstance(result, Failure)
        self.assertEqual(str(result), "ValueError: second failed")
        self.assertEqual(self.log(), ["first"])
        self.assertIn("Not run", str(batch.subjobs[2].result))

    def test_parallel_jobs_all_finish(self):
        batch = self.async_.queueParallelJobs(
            *(makeJob(sample_jobs.add, self.portal, n) for n in range(5))
        )
        result = wait_for_result(batch)
        self.assertEqual(sorted(sub.result for sub in result), [0, 1, 2, 3, 4])


class TestConflicts(JobTestCase):
    def test_conflict_is_retried_and_effects_happen_once(self):
        job = self.async_.queueJob(sample_jobs.conflict_then_log, self.portal, "once", 2)
        self.assertEqual(wait_for_result(job), 3)
        self.assertEqual(job.retries, 2)
        self.assertEqual(self.log(), ["once"])

    def test_zeo_giving_up_on_a_conflict_is_a_conflict(self):
        job = self.async_.queueJob(sample_jobs.zeo_gives_up_once, self.portal, "zeo")
        self.assertEqual(wait_for_result(job), "zeo")
        self.assertEqual((job.retries, self.log()), (1, ["zeo"]))  # nothing of the first attempt was kept

    def test_after_two_conflicts_an_attempt_runs_alone(self):
        job = self.async_.queueJob(sample_jobs.conflict_then_log, self.portal, "alone", 3)
        with self.assertLogs("collective.zasync", level="INFO") as logs:
            self.assertEqual(wait_for_result(job), 4)
        self.assertIn("Job %s: 2 conflicts; its next attempt runs alone in this worker." % job.id,
                      [record.getMessage() for record in logs.records])
        self.assertEqual(self.log(), ["alone"])

    def test_jobs_that_always_conflict_with_each_other_all_succeed(self):
        # Each job changes the same attribute of the site: two at once always conflict;
        # the worker's 2 threads run them side by side (a queue without a concurrency
        # limit). Two retries allowed: a third conflict would fail the job, but the
        # third attempt runs alone.
        self.portal.portal_registry["collective.zasync.max_retries"] = 2
        self.async_.createQueue("parallel")
        jobs = [self.async_.queueJobInQueue("parallel", (), sample_jobs.increment, self.portal, 0.01)
                for _ in range(30)]
        for job in jobs:
            wait_for_result(job, seconds=120)
            self.assertFalse(job.failed, job.result)
        self.assertEqual(self.portal._zasync_test_count, 30)

    def test_conflict_forever_fails_after_max_retries(self):
        # the site's setting (control panel) is stored on the job at queue time
        self.portal.portal_registry["collective.zasync.max_retries"] = 2
        job = self.async_.queueJob(sample_jobs.always_conflict, self.portal)
        self.assertEqual(job.max_retries, 2)
        with self.assertLogs("collective.zasync", level="ERROR"):
            result = wait_for_result(job, seconds=30)
        self.assertIsInstance(result, Failure)
        self.assertIn("ConflictError", str(result))
        self.assertEqual(job.retries, 2)

    def test_without_a_site_setting_the_worker_setting_applies(self):
        del self.portal.portal_registry.records["collective.zasync.max_retries"]
        job = self.async_.queueJob(sample_jobs.always_conflict, self.portal)
        self.assertIsNone(job.max_retries)
        with self.assertLogs("collective.zasync", level="ERROR"):
            wait_for_result(job, seconds=30)
        self.assertEqual(job.retries, 3)  # the layer's worker max_retries
