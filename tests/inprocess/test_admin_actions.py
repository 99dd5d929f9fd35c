"""Admin actions (client/admin.py): retry as the queuing user, cancel, remove, remove all."""

from collective.zasync.client import admin
from collective.zasync.client.transactional import transactional
from collective.zasync.core.failure import Failure
from collective.zasync.core.job import state_name
from collective.zasync.core.job import utcnow
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.records import WorkerRecord
from collective.zasync.interfaces import ACTIVE
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.worker import claiming
from collective.zasync.worker import filing
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone import api
from plone.app.testing import login
from plone.app.testing import TEST_USER_NAME
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase
from tests.support.base import WorkerTestCase

import transaction


class TestActions(WorkerTestCase):
    def test_retry_failed_job_runs_as_the_queuing_user(self):
        job = self.service.queueJob(sample_jobs.whoami, self.portal)
        job.func_name = "tests.support.sample_jobs:fail"
        with self.assertLogs("collective.zasync", level="ERROR"):
            self.assertIsInstance(wait_for_result(job), Failure)
        job.func_name = "tests.support.sample_jobs:whoami"
        api.user.create(email="a@example.org", username="admin2", password="secret123", roles=("Manager",))
        login(self.portal, "admin2")
        admin.retry(job)
        self.assertEqual(wait_for_result(job)["user"], TEST_USER_NAME)
        queue = self.service.getQueues()[""]
        wait_until(lambda: queue.completed_count() == 1)
        self.assertEqual(queue.failed_count(), 0)

    def test_cancel_pending_and_remove_finished(self):
        later = datetime(2100, 1, 1, tzinfo=timezone.utc)
        job = self.service.queueJobWithDelay(None, later, sample_jobs.log_id, self.portal, "never")
        transaction.commit()
        self.assertEqual(state_name(job), "delayed")
        wait_until(lambda: job.id in self.service.getQueues()[""].jobs)  # filed by the worker
        admin.cancel(job)
        transaction.commit()
        self.assertEqual(state_name(job), "failed")
        self.assertIn("Cancelled", str(job.result))
        queue = self.service.getQueues()[""]
        self.assertEqual(len(queue), 0)
        with self.assertRaises(admin.ActionError):
            admin.cancel(job)
        admin.remove(job)
        transaction.commit()
        self.assertIsNone(queue.get(job.id))
        self.assertEqual(queue.failed_count(), 0)

    def test_remove_all_completed(self):
        jobs = [self.service.queueJob(sample_jobs.add, self.portal, n) for n in range(3)]
        for job in jobs:
            wait_for_result(job)
        wait_until(lambda: self.service.getQueues()[""].completed_count() == 3)
        self.assertEqual(admin.remove_finished(self.service.getQueues()[""]), 3)
        self.assertEqual(self.service.getQueues()[""].completed_count(), 0)


class TestCancelAndRecurrences(OwnWorkerTestCase):

    def test_cancelling_one_run_of_a_recurring_job_keeps_the_recurrence(self):
        first = self.service.queueRecurringJob(sample_jobs.noop, self.portal, 3600)
        transaction.commit()
        self.start_worker()
        wait_until(lambda: first.id in get_queue_root(self.portal._p_jar).queues[""].jobs, "the run filed")

        @transactional
        def cancel():
            admin.cancel(first)

        cancel()
        transaction.begin()
        recurrence = first.recurrence
        self.assertTrue(first.failed)
        self.assertFalse(recurrence.cancelled)
        self.assertIsNot(recurrence.current, first)  # (once: no next run, silently)
        self.assertEqual(recurrence.current.begin_after, first.begin_after + timedelta(seconds=3600))

    def test_a_finished_jobs_cancel_request_is_forgotten(self):
        self.start_worker()
        job = self.service.queueJob(sample_jobs.sleep, self.portal, 0.5)
        transaction.commit()
        wait_until(lambda: job.status == ACTIVE and job.started is not None, "the job to start")

        @transactional
        def cancel():
            admin.cancel(job)  # it never checks: it runs to its end

        cancel()
        root = get_queue_root(self.portal._p_jar)
        wait_until(lambda: job.id in root.queues[""].jobs and job.id not in root.cancel_requests,
                   "the job filed, its request forgotten")

    def test_a_job_that_just_finished_is_removed_or_retried_once_filed(self):
        job = self.service.queueJob(sample_jobs.noop, self.portal)
        transaction.commit()
        root = get_queue_root(self.portal._p_jar)
        root.workers["played"] = record = WorkerRecord("played", 1)
        queue = root.queues[""]
        filing.file_inboxes(queue)
        [claimed] = claiming.claim(root, record, 1, utcnow() + timedelta(seconds=5))
        claimed.finish(Failure(ValueError("failed")))
        claimed.complete()  # finished, not filed by the finisher yet
        # (once: removed, then filed again by the finisher; retried, then its old end filed too)
        for action in (admin.remove, admin.retry):
            with self.assertRaisesRegex(admin.ActionError, "a worker is filing it: try again"):
                action(job)
        filing.file_completed(root, record)
        filing.file_done_logs(root, True)
        admin.remove(job)
        self.assertIsNone(queue.get(job.id))
        self.assertNotIn(job, list(queue.failed.values()))
        self.assertEqual(queue.failed_count(), len(queue.failed))
        del root.workers["played"]
        transaction.commit()
