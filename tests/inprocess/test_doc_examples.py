"""The documentation's examples run as they stand, and do what the pages say.

Every ```python block after a ``<!-- example: NAME -->`` line of a page of docs/ is
run by ``test_NAME`` of that page's class, with ``portal`` bound to the test site and a
Manager logged in, in a layer with a worker; the checks after each run are the page's
promises for that example. ``my.addon``, the add-on the pages write, is
tests/support/doc_addon/my/addon. Every ```xml block marked ``<!-- zcml -->`` is loaded, and
the ``zasync.xml`` of docs/through-the-web.md imported.
"""

from collective.zasync.api import get_progress
from collective.zasync.testing import wait_for_result
from collective.zasync.client.transactional import transactional
from collective.zasync.testing import wait_until
from plone import api
from tests.support import docexamples as documents
from tests.support.base import WorkerTestCase
from xml.etree import ElementTree

import os
import sys
import transaction
import unittest


# my.addon, the add-on the documentation writes: importable here and in the layer's worker
ADDON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "support", "doc_addon")
if ADDON not in sys.path:
    sys.path.insert(0, ADDON)


class PageExamples(WorkerTestCase):
    """The examples of one page (PAGE); each must have its test."""

    PAGE = None

    def run_example(self, name, **names):
        return documents.run_example(self.PAGE, name, {"portal": self.portal, **names})

    def test_every_example_is_tested(self):
        if self.PAGE is None:
            return
        tested = {name[len("test_"):] for name in dir(self) if name.startswith("test_")}
        self.assertEqual(set(documents.examples(self.PAGE)) - tested, set())
        self.assertTrue(documents.examples(self.PAGE), "%s has no example" % self.PAGE)


class TestGettingStarted(PageExamples):
    PAGE = "docs/getting-started.md"

    def test_queue_it(self):
        namespace = self.run_example("queue_it")
        self.assertEqual(self.service.getJob(namespace["job_id"]), namespace["job"])
        result = wait_for_result(namespace["job"])
        self.assertEqual(result["user"], "test_user_1_")
        self.assertEqual(result["items"], len(api.content.find(context=self.portal)))


class TestJobsPage(PageExamples):
    PAGE = "docs/jobs.md"

    def test_references(self):
        job = self.run_example("references")["job"]
        self.assertEqual(wait_for_result(job), ["news-0", "news-1", "news-2"])
        transaction.begin()
        for n in range(3):
            self.assertEqual(api.content.get_state(self.portal["news-%d" % n]), "published")

    def test_task(self):
        namespace = self.run_example("task")
        self.assertEqual(namespace["report"], wait_for_result(namespace["job"]))


class TestQueuesPage(PageExamples):
    PAGE = "docs/queues.md"

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

    def test_unique(self):
        namespace = self.run_example("unique")
        self.assertIs(namespace["again"], namespace["first"])

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


class TestRunningPage(PageExamples):
    PAGE = "docs/running.md"

    def test_progress(self):
        job = self.run_example("progress")["job"]
        wait_until(lambda: (get_progress(job) or (0,))[0] > 0, "progress reported")
        value, data = get_progress(job)
        self.assertEqual(data["of"], 10)
        self.assertEqual(value, (data["step"] - 1) * 10)
        self.assertIsInstance(wait_for_result(job), dict)
        self.assertIsNone(get_progress(job))

    def test_cancel_running(self):
        from collective.zasync.dev.examples import count_content
        from collective.zasync.api import get_service

        job = get_service().queueJob(count_content, self.portal, seconds=10)
        transaction.commit()
        wait_until(lambda: (get_progress(job) or (-1,))[0] >= 0, "the job to start")
        self.run_example("cancel_running", job=job)
        transaction.commit()
        with self.assertLogs("collective.zasync", level="ERROR"):
            self.assertIn("Cancelled by", str(wait_for_result(job)))

    def test_checkpoint(self):
        job = self.run_example("checkpoint")["job"]
        self.assertEqual(wait_for_result(job), 5)
        self.assertEqual((job.checkpoints, job.checkpoint_state), (2, "/plone/page-3"))
        self.assertEqual(api.content.get(path="/page-4").subject, ("checked",))

    def test_retry_policy(self):
        job = self.run_example("retry_policy")["job"]
        self.assertEqual(job.retry_on, ("urllib.error:URLError", "builtins:TimeoutError"))
        self.assertEqual((job.max_attempts, job.retry_backoff, job.retry_backoff_max), (5, 30.0, 1800.0))
        self.assertIsInstance(wait_for_result(job), dict)
        self.assertEqual((job.attempts, job.failed_attempts), (1, 0))

    def test_transactional(self):
        self.run_example("transactional")
        transaction.abort()  # nothing pending: the example committed
        self.assertEqual(self.portal["readme-doc"].title, "New")


class TestUserInterfacePage(PageExamples):
    PAGE = "docs/user-interface.md"

    def test_about(self):
        from collective.zasync.core.indexes import jobs_of_content
        from collective.zasync.core.queue import get_queue_root

        job = self.run_example("about")["job"]
        wait_for_result(job)
        root = get_queue_root(self.portal._p_jar)
        wait_until(lambda: job in list(jobs_of_content(root, self.portal["sales-report"])), "the listing")
        self.assertNotIn(job, list(jobs_of_content(root, self.portal)))


class TestTestingPage(PageExamples):
    PAGE = "docs/testing.md"

    def test_functional_test(self):
        case = self.run_example("functional_test")["TestReport"]("test_report")
        result = unittest.TestResult()
        case.run(result)  # in this very layer: ZASYNC_FUNCTIONAL_TESTING, its worker running
        self.assertTrue(result.wasSuccessful(), result.failures + result.errors)
        self.assertEqual(result.testsRun, 1)

    def test_layer(self):
        from collective.zasync.testing import WorkerFunctionalTesting, ZASYNC_FIXTURE

        namespace = self.run_example("layer")
        layer = namespace["MY_ADDON_FUNCTIONAL_TESTING"]
        self.assertIsInstance(layer, WorkerFunctionalTesting)
        self.assertEqual(layer.__bases__, (namespace["MY_ADDON_FIXTURE"],))
        self.assertEqual(namespace["MY_ADDON_FIXTURE"].__bases__, (ZASYNC_FIXTURE,))


class TestConfigurationBlocks(WorkerTestCase):
    """Every ZCML block of the pages loads; the zasync.xml of the pages imports."""

    def load(self, zcml):
        """Load ``zcml`` as my.addon's, in a configuration of its own (popped by the caller)."""
        import my.addon
        from plone.testing import zca
        from zope.configuration import xmlconfig

        context = zca.stackConfigurationContext(self.layer["configurationContext"])
        context.package = my.addon
        xmlconfig.string(zcml, context=context)

    def test_every_zcml_block_loads(self):
        from plone.testing import zca

        blocks = [block for document in documents.DOCUMENTS for block in documents.blocks(document, "zcml")]
        self.assertGreaterEqual(len(blocks), 4)
        for block in blocks:
            with self.subTest(block=block):
                zca.pushGlobalRegistry()
                try:
                    self.load(block.text)
                finally:
                    zca.popGlobalRegistry()

    def test_the_addon_of_the_pages_loads_and_offers_its_job_function(self):
        from collective.zasync.plone.jobfunctions import get_job_function
        from plone.testing import zca

        zca.pushGlobalRegistry()
        try:
            self.load('<include xmlns="http://namespaces.zope.org/zope" package="my.addon" />')
            self.assertEqual(get_job_function("my.addon.report").title, "Count the items of this folder")
            view = self.portal.restrictedTraverse("@@start-report")
            self.assertEqual(type(view).__name__, "StartReport")
        finally:
            zca.popGlobalRegistry()

    def test_the_zasync_xml_of_the_pages_imports(self):
        from collective.zasync.core.queue import get_queue_root
        from collective.zasync.plone.setupxml import apply_xml
        from plone.testing import zca

        [block] = documents.blocks("docs/through-the-web.md", "zasync.xml")
        api.content.create(self.portal, "Folder", id="reports", title="Reports")
        zca.pushGlobalRegistry()
        try:
            self.load('<include xmlns="http://namespaces.zope.org/zope" package="my.addon" />')
            apply_xml(self.portal, ElementTree.fromstring(block.text.encode()))
        finally:
            zca.popGlobalRegistry()
        queues = get_queue_root(self.portal._p_jar).queues
        self.assertEqual(queues["reports"].concurrency, 2)
        self.assertEqual(queues["reports"].quotas["pdf"], 1)
        self.assertEqual(queues[""].quotas["mail"], 2)
        transaction.abort()
