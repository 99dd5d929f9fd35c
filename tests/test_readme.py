"""The README's examples run as they stand, and do what the README says.

Every ```python block after a ``<!-- example: NAME -->`` line is run here with
``portal`` bound to the test site and a Manager logged in, in a layer with a
worker; the checks after each run are the README's promises for that example.
"""

from collective.zasync.api import get_progress
from collective.zasync.testing import wait_for_result
from collective.zasync.transactional import transactional
from collective.zasync.testing import wait_until
from plone import api
from tests import examples as documents
from tests.base import WorkerTestCase

import transaction


def examples():
    """{name: source} of the README's runnable examples."""
    return documents.examples("README.md")


class TestReadmeExamples(WorkerTestCase):

    def run_example(self, name, **names):
        return documents.run_example("README.md", name, {"portal": self.portal, **names})

    def test_every_example_is_tested(self):
        tested = {name[len("test_"):] for name in dir(self) if name.startswith("test_")}
        self.assertEqual(set(examples()) - tested, set())

    def test_progress(self):
        job = self.run_example("progress")["job"]
        wait_until(lambda: (get_progress(job) or (0,))[0] > 0, "progress reported")
        value, data = get_progress(job)
        self.assertEqual(data["of"], 10)
        self.assertEqual(value, (data["step"] - 1) * 10)
        self.assertIsInstance(wait_for_result(job), dict)
        self.assertIsNone(get_progress(job))

    def test_recurring(self):
        job = self.run_example("recurring")["job"]
        self.assertFalse(job.recurrence.cancelled)
        panel = self.portal.restrictedTraverse("@@zasync-controlpanel")
        # listed once a worker has filed the first run
        wait_until(lambda: job.recurrence.id in [row["id"] for row in panel.recurring()], "the listing")

    def test_recurring_cancel(self):
        job = self.run_example("recurring")["job"]

        @transactional  # the job is filed by the worker meanwhile: a ConflictError is retried
        def cancel():
            self.run_example("recurring_cancel", job=job)

        cancel()
        transaction.begin()
        self.assertTrue(job.recurrence.cancelled)
        self.assertEqual(job.begin_after.minute % 15, 0)  # due at the next quarter hour
        self.assertIsNone(job.started)  # cancelled before its first run
        self.assertEqual(job.result.type.__name__, "Cancelled")

    def test_references(self):
        job = self.run_example("references")["job"]
        self.assertEqual(wait_for_result(job), ["news-0", "news-1", "news-2"])
        transaction.begin()
        for n in range(3):
            self.assertEqual(api.content.get_state(self.portal["news-%d" % n]), "published")

    def test_unique(self):
        namespace = self.run_example("unique")
        self.assertIs(namespace["again"], namespace["first"])

    def test_about(self):
        from collective.zasync.indexes import jobs_of_content
        from collective.zasync.queue import get_queue_root

        job = self.run_example("about")["job"]
        wait_for_result(job)
        root = get_queue_root(self.portal._p_jar)
        wait_until(lambda: job in list(jobs_of_content(root, self.portal["sales-report"])), "the listing")
        self.assertNotIn(job, list(jobs_of_content(root, self.portal)))

    def test_transactional(self):
        self.run_example("transactional")
        transaction.abort()  # nothing pending: the example committed
        self.assertEqual(self.portal["readme-doc"].title, "New")

    def test_checkpoint(self):
        job = self.run_example("checkpoint")["job"]
        self.assertEqual(wait_for_result(job), 5)
        self.assertEqual((job.checkpoints, job.checkpoint_state), (2, "/plone/page-3"))
        self.assertEqual(api.content.get(path="/page-4").subject, ("checked",))
    def test_priority(self):
        namespace = self.run_example("priority")
        self.assertEqual(namespace["urgent"].priority, 5)
        self.assertIsInstance(wait_for_result(namespace["urgent"]), dict)
        self.assertIsInstance(wait_for_result(namespace["routine"]), dict)

    def test_rate_limit(self):
        from datetime import timedelta

        namespace = self.run_example("rate_limit")
        self.assertEqual(namespace["queue"].rate_limits["smtp"], (60, timedelta(minutes=1)))
        self.assertIsInstance(wait_for_result(namespace["job"]), dict)

    def test_depends_on(self):
        namespace = self.run_example("depends_on")
        self.assertEqual(wait_for_result(namespace["publish"]), "report is now published")
        self.assertIsInstance(namespace["report"].result, dict)
        self.assertLess(namespace["report"].ended, namespace["publish"].started)
    # -- retry policies, cancelling a running job, @task (tests/test_retry_cancel.py, test_tasks.py) --

    def test_retry_policy(self):
        job = self.run_example("retry_policy")["job"]
        self.assertEqual(job.retry_on, ("urllib.error:URLError", "builtins:TimeoutError"))
        self.assertEqual((job.max_attempts, job.retry_backoff, job.retry_backoff_max), (5, 30.0, 1800.0))
        self.assertIsInstance(wait_for_result(job), dict)
        self.assertEqual((job.attempts, job.failed_attempts), (1, 0))

    def test_cancel_running(self):
        from collective.zasync.examples import count_content
        from collective.zasync.api import get_service

        job = get_service().queueJob(count_content, self.portal, seconds=10)
        transaction.commit()
        wait_until(lambda: (get_progress(job) or (-1,))[0] >= 0, "the job to start")
        self.run_example("cancel_running", job=job)
        transaction.commit()
        with self.assertLogs("collective.zasync", level="ERROR"):
            self.assertIn("Cancelled by", str(wait_for_result(job)))

    def test_task(self):
        namespace = self.run_example("task")
        self.assertEqual(namespace["report"], wait_for_result(namespace["job"]))
