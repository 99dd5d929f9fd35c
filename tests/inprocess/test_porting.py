"""docs/porting.md runs as it stands, and does what it says.

Every ```python block after an ``<!-- example: NAME -->`` line of the guide is
run by ``test_NAME`` with ``portal`` (the site) and ``folder`` (a folder that
the logged-in test user, a Member, owns), in a layer whose worker runs in the
test process; the test then checks what the guide promises around that block.
The job functions are in tests/support/porting_jobs.py; the functions the guide shows
under ``<!-- module: tests/support/porting_jobs.py -->`` must be the same code.
"""

from AccessControl.unauthorized import Unauthorized
from collective.zasync.core.calls import ObjectRef
from collective.zasync.interfaces import COMPLETED
from collective.zasync.testing import WorkerFunctionalTesting
from collective.zasync.testing import ZASYNC_FIXTURE
from collective.zasync.testing import wait_for_result
from collective.zasync.worker.process import worker_uuid
from pathlib import Path
from plone import api
from plone.app.testing import TEST_USER_ID
from tests.support import docexamples as documents
from tests.support import porting_jobs
from tests.support.base import MemberFolderTestCase
from unittest import mock

import ast
import collective.zasync
import os
import re
import tempfile
import unittest


GUIDE = "docs/porting.md"
MODULE_BLOCK = re.compile(r"<!-- module: tests/support/porting_jobs.py -->\n```python\n(.*?)```", re.S)


def guide_text():
    return (documents.ROOT / GUIDE).read_text()


class TestPortingGuide(MemberFolderTestCase):

    def run_example(self, name, **names):
        namespace = {"portal": self.portal, "folder": self.folder, **names}
        return documents.run_example(GUIDE, name, namespace)

    def test_every_example_is_tested(self):
        tested = {name[len("test_"):] for name in dir(self) if name.startswith("test_")}
        self.assertEqual(set(documents.examples(GUIDE)) - tested, set())

    # -- plone.app.async -------------------------------------------------------------------

    def test_queue_job(self):
        ns = self.run_example("queue_job")
        job = ns["job"]
        self.assertEqual((job.status, job.result), (COMPLETED, 42))
        self.assertEqual(job.user_id, TEST_USER_ID)  # as the user who queued it
        self.assertEqual(len(ns["queue"]), 0)

    def test_refused(self):
        ns = self.run_example("refused")
        closure, lam, callback = ns["errors"]
        self.assertIn("Cannot queue make_retitle.<locals>.retitle_to: it is defined inside another "
                      "function", closure)
        self.assertIn("Cannot queue a lambda", lam)
        self.assertIn("Cannot queue a lambda", callback)
        self.assertEqual(len(self.service.getQueues()[""]), 2, "nothing refused was queued")
        self.assertEqual(wait_for_result(ns["job"]), "New")
        self.assertEqual(self.folder.title, "New")

    def test_in_order(self):
        ns = self.run_example("in_order")
        job, job2 = ns["job"], ns["job2"]
        self.assertEqual(job.result, "foo")
        self.assertLessEqual(job.ended, job2.started, "job had ended when job2 started")

    def test_no_default_quota(self):
        ns = self.run_example("no_default_quota")
        self.assertEqual(
            ns["message"],
            "Queue '' has no quota 'default'; create it first with queue.quotas['default'] = size.",
        )
        self.assertEqual(wait_for_result(ns["job"]), 42)
        self.assertEqual(self.service.getQueues()[""].concurrency, 1, "still one at a time")

    def test_serial(self):
        self.run_example("serial")
        self.assertEqual(api.content.get_state(self.folder["bar"]), "pending")

    def test_quotas(self):
        ns = self.run_example("quotas")
        first, second, other = ns["first"], ns["second"], ns["other"]
        self.assertEqual(
            [wait_for_result(job) for job in (first, second, other)],
            ["first.pdf", "second.pdf", "other.pdf"],
        )
        self.assertEqual(self.service.getQueues()["reports"].quotas["pdf"], 1)
        self.assertLessEqual(first.ended, second.started, "one 'pdf' job at a time")
        self.assertLess(other.started, first.ended, "a job without the quota ran beside it")

    def test_ordered_queue(self):
        jobs = self.run_example("ordered_queue")["jobs"]
        self.assertEqual([wait_for_result(job) for job in jobs], ["a.pdf", "b.pdf", "c.pdf"])
        self.assertEqual(sorted(jobs, key=lambda job: job.started), jobs, "in queueing order")
        for earlier, later in zip(jobs, jobs[1:]):
            self.assertLessEqual(earlier.ended, later.started, "one at a time")

    def test_delay(self):
        ns = self.run_example("delay")
        self.assertEqual(ns["job"].begin_after, ns["begin_after"])

    def test_security(self):
        job = self.run_example("security")["job"]
        self.assertEqual(job.user_id, TEST_USER_ID)
        self.assertIs(job.result.type, Unauthorized)
        self.assertNotIn("foo", self.portal)

    def test_failure(self):
        failure = self.run_example("failure")["failure"]
        self.assertEqual(failure.getErrorMessage(), "FooBared")

    def test_callbacks(self):
        ns = self.run_example("callbacks")
        self.assertEqual(ns["c"].status, COMPLETED)
        self.assertEqual(ns["c"].user_id, TEST_USER_ID)  # a callback runs as the same user

    def test_events(self):
        ns = self.run_example("events")
        self.assertEqual(ns["results"], [42, "RuntimeError: FooBared"])
        self.assertLessEqual(ns["job1"].ended, ns["job2"].started)

    def test_references(self):
        ns = self.run_example("references")
        job, source = ns["job"], ns["source"]
        self.assertTrue(ns["url"].endswith("/plone/folder/source"), ns["url"])
        [ref] = job.args  # stored by path and object id, not as the object
        self.assertIsInstance(ref, ObjectRef)
        self.assertEqual((ref.path, ref.oid), ("/plone/folder/source", source._p_oid))
        self.assertEqual(self.folder.title, "From the source")

    def test_testing(self):
        case = self.run_example("testing")["TestJobs"]("test_add")
        self.assertIs(case.layer, self.layer)
        result = unittest.TestResult()
        case.run(result)  # inside this test's layer, which runs the worker
        self.assertEqual((result.testsRun, result.errors, result.failures), (1, [], []))

    def test_layer(self):
        ns = self.run_example("layer")
        layer, fixture = ns["MY_ADDON_FUNCTIONAL_TESTING"], ns["MY_ADDON_FIXTURE"]
        self.assertIsInstance(layer, WorkerFunctionalTesting)  # it runs a worker
        self.assertEqual(layer.__bases__, (fixture,))
        self.assertEqual(fixture.__bases__, (ZASYNC_FIXTURE,))

    # -- collective.taskqueue, collective.celery ---------------------------------------------

    def test_taskqueue(self):
        for title in ("Budget", "Annual meeting"):
            api.content.create(self.folder, "News Item", title=title)
        ns = self.run_example("taskqueue")
        job = ns["job"]
        self.assertEqual(wait_for_result(job), "report-2024")
        self.assertIs(self.service.getJob(ns["job_id"]), job)
        report = self.folder["report-2024"]
        self.assertEqual(report.description, "2 news items: Annual meeting, Budget")
        self.assertEqual(report.Creator(), TEST_USER_ID)  # created as the user who queued it
        self.assertEqual(job.kwargs, {"year": 2024})

    def test_celery(self):
        job = self.run_example("celery")["job"]
        self.assertEqual(wait_for_result(job), ("archived",))
        self.assertEqual(job.user_id, TEST_USER_ID)
        self.assertEqual([b.getId for b in api.content.find(Subject="archived")], ["folder"])

    def test_celery_task(self):
        job = self.run_example("celery_task")["job"]
        self.assertEqual(job.func_name, "tests.support.porting_jobs:archive")
        self.assertEqual(wait_for_result(job), ("archived",))
        self.assertEqual(job.user_id, TEST_USER_ID)

    def test_as_admin(self):
        ns = self.run_example("as_admin")
        document = ns["document"]
        self.assertEqual(wait_for_result(ns["job"]), "published")
        self.assertFalse(api.user.has_permission("Review portal content", obj=document),
                         "the Member who queued the job cannot publish")
        self.assertEqual(ns["job"].user_id, TEST_USER_ID)


class TestPortingGuideText(unittest.TestCase):
    """What the guide says that is not a runnable example."""

    def test_functions_shown_are_those_of_porting_jobs(self):
        module = ast.parse(Path(porting_jobs.__file__).read_text())
        defined = {node.name: ast.dump(node) for node in module.body
                   if isinstance(node, ast.FunctionDef)}
        imports = {ast.dump(node) for node in module.body
                   if isinstance(node, (ast.Import, ast.ImportFrom))}
        blocks = MODULE_BLOCK.findall(guide_text())
        self.assertTrue(blocks)
        shown = set()
        for block in blocks:
            for node in ast.parse(block).body:
                if isinstance(node, ast.FunctionDef):
                    self.assertEqual(ast.dump(node), defined.get(node.name),
                                     "%s differs from tests/support/porting_jobs.py" % node.name)
                    shown.add(node.name)
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    self.assertIn(ast.dump(node), imports, ast.unparse(node))
                else:
                    self.fail("Only imports and functions: %s" % ast.unparse(node))
        self.assertGreaterEqual(len(shown), 8)

    def test_decorator_is_task(self):
        # The decorator is collective.zasync.task (collective.zasync.job is the Job's module).
        self.assertTrue(callable(collective.zasync.task))
        self.assertFalse(callable(getattr(collective.zasync, "job", None)))
        self.assertIn("@collective.zasync.task", guide_text())

    def test_zcml_files(self):
        package = Path(collective.zasync.__file__).parent
        include = r'<include package="collective.zasync" file="(\w+\.zcml)" />'
        named = set(re.findall(include, guide_text()))
        self.assertEqual(named, {"single_db_instance.zcml", "single_db_worker.zcml"})
        for name in ("single_db_instance", "single_db_worker",
                     "multi_db_instance", "multi_db_worker"):
            text = (package / (name + ".zcml")).read_text()
            self.assertEqual('file="worker.zcml"' in text, name.endswith("_worker"), name)

    def test_only_workers_need_zasync_uuid(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "worker1-uuid.txt")
            with mock.patch.dict(os.environ, {"ZASYNC_UUID": path}):
                first = worker_uuid()  # created on first start ...
                self.assertEqual(worker_uuid(), first)  # ... and kept
            with open(path) as f:
                self.assertEqual(f.read().strip(), first)
