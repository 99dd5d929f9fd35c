"""Poison jobs: each ends failed with a clear message, and the worker goes on.

In-process (ZASYNC_FUNCTIONAL_TESTING): a job that always raises, one that
always conflicts, one whose module is gone, one whose context is gone, one
raising SystemExit or KeyboardInterrupt, one whose result cannot be stored.
After each, the same worker still runs a normal job.
"""

from collective.zasync import interfaces
from tests.support import sample_jobs
from collective.zasync.core.failure import Failure
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from plone import api
from ZODB.POSException import ConflictError
from tests.support.base import WorkerTestCase

import importlib
import os
import shutil
import sys
import tempfile
import transaction
import uuid


class PoisonTestCase(WorkerTestCase):
    def tearDown(self):
        # whatever the poison did, the worker and its threads are still there
        self.assert_worker_alive()

    def assert_worker_alive(self):
        dispatcher = self.layer["zasync_dispatcher"]
        self.assertTrue(dispatcher._loop_thread.is_alive(), "the dispatcher loop died")
        self.assertTrue(all(thread.is_alive() for thread in dispatcher._threads), "a job thread died")
        # ... and it runs a normal job, on each of its threads
        jobs = [self.service.queueJob(sample_jobs.add, self.portal, n, b=1) for n in range(3)]
        transaction.commit()
        self.assertEqual([wait_for_result(job, seconds=30) for job in jobs], [1, 2, 3])
        self.assertEqual({job.worker_uuid for job in jobs}, {self.layer.worker_uuid})

    def run_poison(self, job, seconds=30):
        """Run ``job``; return its Failure, checked to be a finished, logged failure."""
        with self.assertLogs("collective.zasync", level="ERROR") as logs:
            result = wait_for_result(job, seconds=seconds)
        self.assertIsInstance(result, Failure)
        self.assertEqual(job.status, interfaces.COMPLETED)
        self.assertTrue(job.failed)
        self.assertTrue(result.getTraceback().startswith("Traceback"), result.getTraceback())
        errors = [r.getMessage() for r in logs.records if r.levelname == "ERROR"]
        self.assertEqual(len(errors), 1, errors)
        self.assertIn(job.id, errors[0])
        # filed among the failed jobs, not pending again, not on the worker
        queue = self.service.getQueues()[""]
        wait_until(lambda: job in list(queue.finished(failed=True)), "the job to be filed as failed")
        self.assertNotIn(job, list(queue.pending()))
        return result


class TestPoisonJobs(PoisonTestCase):
    def test_job_that_always_raises(self):
        job = self.service.queueJob(sample_jobs.fail, self.portal, "always broken")
        result = self.run_poison(job)
        self.assertIs(result.type, ValueError)
        self.assertEqual(str(result), "ValueError: always broken")
        self.assertEqual(job.attempts, 1, "an ordinary error is not retried")
        self.assertEqual(job.retries, 0)

    def test_job_that_always_conflicts_fails_after_max_retries(self):
        job = self.service.queueJob(sample_jobs.always_conflict, self.portal)
        result = self.run_poison(job, seconds=60)
        self.assertIs(result.type, ConflictError)
        self.assertIn("ConflictError", str(result))
        max_retries = job.max_retries  # the site's setting, stored at queue time
        self.assertEqual(max_retries, 5)
        self.assertEqual(job.retries, max_retries)
        # Conflict retries happen in the same claim; then the job runs once more, alone in
        # the cluster (gate.py), and fails only when it conflicts that often again.
        self.assertEqual(job.attempts, 2)
        self.assertIsNotNone(job.alone_since)  # it waited to run alone ...
        self.assertFalse(job.alone)  # ... and its run alone is over
        transaction.begin()
        self.assertEqual(job.status, interfaces.COMPLETED, "not retried forever")

    def test_exception_that_cannot_be_pickled(self):
        job = self.service.queueJob(sample_jobs.raise_unpicklable_error, self.portal)
        result = self.run_poison(job)
        self.assertEqual(result.type, ValueError)
        self.assertIn("lock", str(result))

    def test_module_removed_before_the_job_runs(self):
        tmp = tempfile.mkdtemp(prefix="zasync-poison-")
        name = "zasync_poison_%s" % uuid.uuid4().hex[:8]
        path = os.path.join(tmp, name + ".py")
        with open(path, "w") as f:
            f.write("def job(context):\n    return 'ran'\n")
        sys.path.insert(0, tmp)
        try:
            importlib.invalidate_caches()
            module = importlib.import_module(name)
            job = self.service.queueJob(module.job, self.portal)
            self.assertEqual(job.func_name, "%s:job" % name)
            # the module disappears (an add-on uninstalled, a deploy renamed it)
            os.remove(path)
            shutil.rmtree(os.path.join(tmp, "__pycache__"), ignore_errors=True)
            del sys.modules[name]
            importlib.invalidate_caches()
            result = self.run_poison(job)
        finally:
            sys.path.remove(tmp)
            sys.modules.pop(name, None)
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertTrue(issubclass(result.type, ImportError), result)
        self.assertIn(name, str(result))

    def test_function_removed_from_its_module(self):
        job = self.service.queueJob(sample_jobs.noop, self.portal)
        job.func_name = "tests.support.sample_jobs:no_such_function"  # renamed since
        result = self.run_poison(job)
        self.assertIs(result.type, ImportError)
        self.assertIn("Cannot import the job function", str(result))
        self.assertIn("no_such_function", str(result))

    def test_context_deleted_before_the_job_ran(self):
        api.content.create(self.portal, "Document", id="doomed", title="Doomed")
        transaction.commit()
        job = self.service.queueJob(sample_jobs.log_id, self.portal["doomed"], "should not run")
        # Without events (a deletion fails its jobs at once: test_content_life): the worker's check.
        self.portal._delObject("doomed", suppress_events=True)
        result = self.run_poison(job)
        self.assertIn("/plone/doomed no longer exists", str(result))
        self.assertEqual(list(getattr(self.portal, "_zasync_test_log", [])), [])

    def test_context_replaced_before_the_job_ran(self):
        api.content.create(self.portal, "Document", id="twin", title="First")
        transaction.commit()
        job = self.service.queueJob(sample_jobs.log_id, self.portal["twin"], "should not run")
        self.portal._delObject("twin", suppress_events=True)  # (without events, as above)
        api.content.create(self.portal, "Document", id="twin", title="Second")
        result = self.run_poison(job)
        self.assertIn("/plone/twin was replaced", str(result))
        self.assertEqual(list(getattr(self.portal, "_zasync_test_log", [])), [])

    def test_persistent_argument_deleted_before_the_job_ran(self):
        api.content.create(self.portal, "Document", id="arg", title="Arg")
        transaction.commit()
        job = self.service.queueJob(sample_jobs.add, self.portal, self.portal["arg"])
        self.portal._delObject("arg", suppress_events=True)  # (without events, as above)
        result = self.run_poison(job)
        self.assertIn("/plone/arg no longer exists", str(result))

    def test_system_exit(self):
        job = self.service.queueJob(sample_jobs.raise_base, self.portal, "SystemExit")
        result = self.run_poison(job)
        self.assertIs(result.type, SystemExit)
        self.assertEqual(job.attempts, 1)

    def test_keyboard_interrupt(self):
        job = self.service.queueJob(sample_jobs.raise_base, self.portal, "KeyboardInterrupt")
        result = self.run_poison(job)
        self.assertIs(result.type, KeyboardInterrupt)
        self.assertEqual(job.attempts, 1)

    def test_unpicklable_result(self):
        job = self.service.queueJob(sample_jobs.unpicklable_result, self.portal)
        result = self.run_poison(job)
        self.assertIs(result.type, TypeError)
        self.assertIn("cannot be pickled", str(result))

    def test_acquisition_wrapped_result(self):
        # Content returned as the result is stored by reference, without its acquisition
        # wrapper (never a worker that cannot commit).
        job = self.service.queueJob(sample_jobs.return_context, self.portal)
        result = wait_for_result(job)
        self.assertFalse(job.failed, result)
        self.assertIs(result, self.portal.aq_base)

    def test_poison_in_a_serial_batch_stops_it_and_the_worker_goes_on(self):
        from collective.zasync.client.service import makeJob

        batch = self.service.queueSerialJobs(
            makeJob(sample_jobs.raise_base, self.portal, "SystemExit"),
            makeJob(sample_jobs.log_id, self.portal, "after"),
        )
        with self.assertLogs("collective.zasync", level="ERROR"):
            result = wait_for_result(batch, seconds=30)
        self.assertIsInstance(result, Failure)
        self.assertIs(result.type, SystemExit)
        self.assertIn("Not run", str(batch.subjobs[1].result))

    def test_many_poison_jobs_at_once(self):
        kinds = [
            (sample_jobs.fail, ("x",)),
            (sample_jobs.raise_base, ("SystemExit",)),
            (sample_jobs.raise_base, ("KeyboardInterrupt",)),
            (sample_jobs.unpicklable_result, ()),
            (sample_jobs.always_conflict, ()),
        ] * 2
        jobs = [self.service.queueJob(func, self.portal, *args) for func, args in kinds]
        good = self.service.queueJob(sample_jobs.add, self.portal, 40, b=2)
        with self.assertLogs("collective.zasync", level="ERROR"):
            transaction.commit()
            self.assertEqual(wait_for_result(good, seconds=60), 42)
            results = [wait_for_result(job, seconds=60) for job in jobs]
        self.assertTrue(all(isinstance(result, Failure) for result in results))
