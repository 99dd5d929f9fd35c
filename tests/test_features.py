"""Progress, admin actions, recurring jobs, unique keys, retention, @transactional."""

from collective.zasync import actions
from tests import sample_jobs
from collective.zasync.api import get_progress
from collective.zasync.failure import Failure
from collective.zasync.queue import get_queue_root
from collective.zasync.recurring import next_cron_time
from collective.zasync.recurring import parse_cron
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.transactional import transactional
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone import api
from plone.app.testing import login
from plone.app.testing import SITE_OWNER_NAME
from plone.app.testing import TEST_USER_NAME
from tests.base import WorkerTestCase
from Testing.makerequest import makerequest
from ZODB.POSException import ConflictError
from zope.component.hooks import site

import transaction


FeatureTestCase = WorkerTestCase


class TestProgress(FeatureTestCase):
    def test_progress_is_visible_while_the_job_runs(self):
        sample_jobs.gate.clear()
        job = self.service.queueJob(sample_jobs.report_progress, self.portal)
        self.assertEqual(get_progress(job), (-1, None))
        transaction.commit()
        try:
            wait_until(lambda: get_progress(job) == (50, {"step": "half"}))
        finally:
            sample_jobs.gate.set()
        self.assertEqual(wait_for_result(job), "done")
        self.assertIsNone(get_progress(job))

    def test_set_progress_outside_a_job_or_out_of_range(self):
        from collective.zasync.api import set_progress

        with self.assertRaises(RuntimeError):
            set_progress(10)


class TestActions(FeatureTestCase):
    def test_retry_failed_job_runs_as_the_queuing_user(self):
        job = self.service.queueJob(sample_jobs.whoami, self.portal)
        job.func_name = "tests.sample_jobs:fail"
        with self.assertLogs("collective.zasync", level="ERROR"):
            self.assertIsInstance(wait_for_result(job), Failure)
        job.func_name = "tests.sample_jobs:whoami"
        api.user.create(email="a@example.org", username="admin2", password="secret123", roles=("Manager",))
        login(self.portal, "admin2")
        actions.retry(job)
        self.assertEqual(wait_for_result(job)["user"], TEST_USER_NAME)
        queue = self.service.getQueues()[""]
        wait_until(lambda: queue.completed_count() == 1)
        self.assertEqual(queue.failed_count(), 0)

    def test_cancel_pending_and_remove_finished(self):
        later = datetime(2100, 1, 1, tzinfo=timezone.utc)
        job = self.service.queueJobWithDelay(None, later, sample_jobs.log_id, self.portal, "never")
        transaction.commit()
        self.assertEqual(actions.state_of(job), "delayed")
        wait_until(lambda: job.id in self.service.getQueues()[""].jobs)  # filed by the worker
        actions.cancel(job)
        transaction.commit()
        self.assertEqual(actions.state_of(job), "failed")
        self.assertIn("Cancelled", str(job.result))
        queue = self.service.getQueues()[""]
        self.assertEqual(len(queue), 0)
        with self.assertRaises(actions.ActionError):
            actions.cancel(job)
        actions.remove(job)
        transaction.commit()
        self.assertIsNone(queue.get(job.id))
        self.assertEqual(queue.failed_count(), 0)

    def test_remove_all_completed(self):
        jobs = [self.service.queueJob(sample_jobs.add, self.portal, n) for n in range(3)]
        for job in jobs:
            wait_for_result(job)
        wait_until(lambda: self.service.getQueues()[""].completed_count() == 3)
        self.assertEqual(actions.remove_finished(self.service.getQueues()[""]), 3)
        self.assertEqual(self.service.getQueues()[""].completed_count(), 0)


class TestRecurring(FeatureTestCase):
    def test_runs_repeatedly_until_cancelled_never_overlapping(self):
        first = self.service.queueRecurringJob(sample_jobs.sleep, self.portal, 1, 0.2)
        recurrence = first.recurrence
        transaction.commit()
        wait_until(lambda: recurrence.runs >= 3, "three runs", seconds=30)
        self.service.cancelRecurringJob(recurrence)
        transaction.commit()
        runs, last = recurrence.runs, recurrence.current  # (pending: cancelled at once; running: ends)
        queue = self.service.getQueues()[""]
        # The dispatcher files a run that ended and schedules the next one in one transaction:
        # once the last run is filed, no run comes after it.
        wait_until(lambda: last in list(queue.finished()) + list(queue.finished(failed=True)),
                   "the last run to be filed")
        self.assertLessEqual(recurrence.runs, runs + 1)
        self.assertEqual([job for job in queue.pending() if job.recurrence is recurrence], [])
        finished = sorted(
            (job.started, job.ended) for job in queue.completed.values() if job.recurrence is recurrence
        )
        self.assertGreaterEqual(len(finished), 3)
        for (_, end), (start, _) in zip(finished, finished[1:]):
            self.assertGreater(start, end)
        self.assertNotIn(recurrence.id, queue.recurring)

    def test_cron_parsing(self):
        after = datetime(2026, 11, 24, 10, 7, tzinfo=timezone.utc)  # a Tuesday
        self.assertEqual(next_cron_time("*/15 * * * *", after), after.replace(minute=15))
        self.assertEqual(next_cron_time("0 3 * * *", after), datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc))
        self.assertEqual(next_cron_time("30 8 * * 1", after), datetime(2026, 11, 30, 8, 30, tzinfo=timezone.utc))
        self.assertEqual(next_cron_time("0 0 1 1 *", after), datetime(2027, 1, 1, 0, 0, tzinfo=timezone.utc))
        for bad in ("* * *", "61 * * * *", "a * * * *", "*/0 * * * *"):
            with self.assertRaises(ValueError):
                parse_cron(bad)
        with self.assertRaises(TypeError):
            self.service.queueRecurringJob(sample_jobs.noop, self.portal, [1])


class TestUniqueAndRetention(FeatureTestCase):
    def test_unique_key_returns_the_pending_job(self):
        first = self.service.queueJob(sample_jobs.add, self.portal, 1, unique_key="sum")
        again = self.service.queueJob(sample_jobs.add, self.portal, 2, unique_key="sum")
        self.assertIs(first, again)
        transaction.commit()
        self.assertIs(self.service.queueJob(sample_jobs.add, self.portal, 3, unique_key="sum"), first)
        self.assertEqual(wait_for_result(first), 1)
        later = self.service.queueJob(sample_jobs.add, self.portal, 4, unique_key="sum")
        self.assertIsNot(later, first)
        self.assertEqual(wait_for_result(later), 4)

    def test_two_requests_with_the_same_unique_key_queue_one_job(self):
        transaction.commit()
        tm = transaction.TransactionManager()
        conn = self.layer["zodbDB"].open(transaction_manager=tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        other_portal = makerequest(conn.root()["Application"])[self.portal.getId()]
        later = datetime.now(timezone.utc) + timedelta(hours=1)  # (still pending when the second looks)
        with site(other_portal):  # another request, in another connection
            first = self.service.queueJobWithDelay(None, later, sample_jobs.add, other_portal, 1, unique_key="once")
        self.service.queueJobWithDelay(None, later, sample_jobs.add, self.portal, 2, unique_key="once")
        tm.commit()
        with self.assertRaises(ConflictError):  # both wrote the key: the second request fails ...
            transaction.commit()
        transaction.abort()
        again = self.service.queueJob(sample_jobs.add, self.portal, 2, unique_key="once")  # ... and is retried
        self.assertEqual(again.id, first.id)
        transaction.commit()
        self.assertEqual([job.id for job in self.service.getQueues()[""].pending()], [first.id])

    def test_finished_jobs_are_removed_after_the_retention(self):
        jobs = [self.service.queueJob(sample_jobs.add, self.portal, n) for n in range(5)]
        for job in jobs:
            wait_for_result(job)
        dispatcher = self.layer["zasync_dispatcher"]
        wait_until(lambda: self.service.getQueues()[""].completed_count() == 5)
        self.assertEqual(dispatcher.remove_old_jobs(), 0)  # younger than 7 days
        dispatcher.settings.retention_days = 0  # zope.conf: the site's setting wins
        self.assertEqual(dispatcher.remove_old_jobs(), 0)
        # saved in the control panel (by the Zope root's Manager): copied onto the queue root for the workers
        login(self.layer["app"], SITE_OWNER_NAME)
        self.portal.portal_registry["collective.zasync.retention_days"] = 0
        transaction.commit()
        self.assertEqual(get_queue_root(self.portal._p_jar).retention_days, 0)
        self.assertEqual(dispatcher.remove_old_jobs(), 5)
        transaction.begin()
        queue = get_queue_root(self.portal._p_jar).queues[""]
        self.assertEqual(queue.completed_count(), 0)
        self.assertEqual(len(queue.completed), 0)
        self.assertIsNone(queue.get(jobs[0].id))


class TestTimeLimit(FeatureTestCase):
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


class TestTransactional(FeatureTestCase):
    def test_commits_retries_conflicts_and_nests(self):
        transaction.commit()  # setUp's role change
        calls = []

        @transactional(retries=2, delay=0.001)
        def flaky():
            calls.append(1)
            self.portal._zasync_test_value = len(calls)
            if len(calls) < 3:
                raise ConflictError("simulated")
            inner()
            return "ok"

        @transactional
        def inner():
            calls.append("inner")

        self.assertEqual(flaky(), "ok")
        transaction.abort()
        self.assertEqual(self.portal._zasync_test_value, 3)

        @transactional(retries=1, delay=0.001)
        def always():
            raise ConflictError("again")

        with self.assertRaises(ConflictError):
            always()

        @transactional
        def broken():
            self.portal._zasync_test_value = "never"
            raise KeyError("x")

        with self.assertRaises(KeyError):
            broken()
        self.assertEqual(self.portal._zasync_test_value, 3)
        with self.assertRaises(ValueError):
            transactional(retries=-1)(lambda: None)

    def test_refuses_to_throw_away_uncommitted_changes(self):
        @transactional
        def touch():
            self.portal._zasync_test_value = "touched"

        transaction.commit()
        self.portal._zasync_test_value = "pending"
        with self.assertRaises(RuntimeError) as raised:
            touch()
        self.assertIn("Commit or abort them first", str(raised.exception))
        self.assertEqual(self.portal._zasync_test_value, "pending")  # nothing lost
        transaction.commit()
        touch()
        transaction.abort()
        self.assertEqual(self.portal._zasync_test_value, "touched")

    def test_the_package_attribute_is_the_decorator(self):
        import collective.zasync

        self.assertIs(collective.zasync.transactional, transactional)
