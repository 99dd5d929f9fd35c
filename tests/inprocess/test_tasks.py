"""@collective.zasync.task: enqueue, inline calls, options, refusals at decoration time."""

from collective.zasync import task
from collective.zasync.testing import wait_for_result
from collective.zasync.core.job import state_name
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone import api
from plone.app.testing import login
from plone.app.testing import TEST_USER_ID
from tests.support import runner_jobs
from tests.support.base import WorkerTestCase
from urllib.error import URLError

import threading
import transaction


class TestTask(WorkerTestCase):
    def test_enqueue_runs_it_as_the_user_and_a_call_runs_it_inline(self):
        self.portal.setTitle("Site")
        self.assertEqual(runner_jobs.add_title(self.portal, " inline"), "Site inline")
        job = runner_jobs.add_title.enqueue(self.portal, "!")
        self.assertEqual(job.func_name, "tests.support.runner_jobs:add_title")
        self.assertEqual((job.user_id, job.queue_name), (TEST_USER_ID, ""))
        self.assertEqual(wait_for_result(job), "Site inline!")
        # IAsyncService takes a task as well as a function.
        self.assertEqual(wait_for_result(self.service.queueJob(runner_jobs.add_title, self.portal, "?")),
                         "Site inline!?")
        self.assertEqual(runner_jobs.add_title.__name__, "add_title")
        self.assertIn("Append", runner_jobs.add_title.__doc__)

    def test_options_queue_retry_policy_and_unique(self):
        with self.assertRaises(ValueError) as raised:
            runner_jobs.report.enqueue(self.portal, 2026)
        self.assertIn("no queue named 'reports'", str(raised.exception))
        self.service.createQueue("reports")
        job = runner_jobs.report.enqueue(self.portal, 2026)
        self.assertIs(runner_jobs.report.enqueue(self.portal, 2026), job, "unique=True")
        other = runner_jobs.report.enqueue(self.portal, 2027)
        self.assertIsNot(other, job)
        self.assertEqual(job.queue_name, "reports")
        self.assertEqual((job.retry_on, job.max_attempts, job.retry_backoff),
                         (("urllib.error:URLError", "tests.support.runner_jobs:RemoteDown"), 2, 0.01))
        with self.assertLogs("collective.zasync", level="WARNING"):
            self.assertEqual(wait_for_result(job), "report 2026, attempt 2")
            self.assertEqual(wait_for_result(other), "report 2027, attempt 2")

    def test_delays_and_a_unique_callable(self):
        before = datetime.now(timezone.utc)
        job = runner_jobs.later.enqueue(self.portal, 2026)
        self.assertEqual(job.unique_key, "year-2026")
        self.assertTrue(before + timedelta(hours=1) <= job.begin_after, "delay=3600")
        self.assertIs(runner_jobs.later.enqueue_in(5, self.portal, 2026), job, "same key")
        soon = runner_jobs.later.enqueue_in(timedelta(minutes=5), self.portal, 2027)
        self.assertTrue(before + timedelta(minutes=5) <= soon.begin_after < before + timedelta(hours=1))
        when = datetime(2100, 1, 1, tzinfo=timezone.utc)
        self.assertEqual(runner_jobs.later.enqueue_at(when, self.portal, 2028).begin_after, when)
        transaction.commit()
        self.assertEqual(state_name(job), "delayed")
        with self.assertRaises(ValueError) as raised:
            runner_jobs.later.enqueue_at(datetime(2100, 1, 1), self.portal, 2029)
        self.assertIn("no time zone", str(raised.exception))

    def test_same_checks_as_the_service(self):
        with self.assertRaises(TypeError) as raised:
            runner_jobs.add_title.enqueue(self.portal, threading.Lock())
        self.assertIn("cannot be pickled", str(raised.exception))
        with self.assertRaises(ValueError):
            runner_jobs.add_title.enqueue(object(), "!")
        api.user.create(email="m@example.org", username="member", password="secret123", roles=("Member",))
        login(self.portal, "member")
        self.assertEqual(runner_jobs.add_title.enqueue(self.portal, "!").user_id, "member")
        transaction.abort()

    def test_refused_at_decoration_time(self):
        def nested(context):
            pass

        class Tool:
            def method(self, context):
                pass

        for func, message in ((nested, "defined inside another function"),
                              (lambda context: None, "a lambda"),
                              (Tool.method, "defined inside another function")):
            with self.assertRaises(ValueError) as raised:
                task(func)
            self.assertIn(message, str(raised.exception))
        with self.assertRaises(TypeError):
            task(print)
        with self.assertRaises(TypeError) as raised:
            task(retry_on="URLError")(runner_jobs.flaky)
        self.assertIn("exception classes", str(raised.exception))
        with self.assertRaises(ValueError):
            task(max_attempts=3)(runner_jobs.flaky)
        with self.assertRaises(TypeError):
            task(delay="soon")(runner_jobs.flaky)
        with self.assertRaises(TypeError):
            task(unique="yes")(runner_jobs.flaky)
        decorated = task(retry_on=URLError)(runner_jobs.flaky)  # fine options: a Task
        self.assertEqual(decorated.policy, {"retry_on": URLError})
