"""What the service takes at queue time: decorated functions, quota names, a job's identity."""

from collective.zasync import interfaces
from collective.zasync.core.job import Job
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.testing import ZASYNC_INTEGRATION_TESTING
from plone.app.testing import setRoles
from plone.app.testing import TEST_USER_ID
from tests.support import input_jobs
from tests.support import sample_jobs
from tests.support.base import WorkerTestCase

import transaction
import unittest


class TestDecoratedFunctions(WorkerTestCase):
    def test_function_behind_functools_wraps_runs(self):
        job = self.service.queueJob(input_jobs.double, self.portal, 21)
        self.assertEqual(job.func_name, "tests.support.input_jobs:double")
        self.assertEqual(wait_for_result(job), ("logged", 42))

    def test_transactional_function_runs(self):
        job = self.service.queueJob(input_jobs.retitle, self.portal, "Retitled by a job")
        self.assertEqual(wait_for_result(job), "Retitled by a job")
        transaction.begin()
        self.assertEqual(self.portal.title, "Retitled by a job")

    def test_wrapper_without_a_name_of_its_own_is_still_refused(self):
        with self.assertRaises(ValueError) as raised:
            self.service.queueJob(input_jobs.unfindable, self.portal)
        self.assertIn("inside another function", str(raised.exception))


class TestRecurringRuns(WorkerTestCase):
    def test_next_run_keeps_the_sites_max_retries(self):
        self.portal.portal_registry["collective.zasync.max_retries"] = 1
        first = self.service.queueRecurringJob(sample_jobs.add, self.portal, 1, 2)
        self.assertEqual(first.max_retries, 1)
        self.assertEqual(wait_for_result(first), 2)
        recurrence = first.recurrence
        wait_until(lambda: recurrence.current is not first, "the second run")
        second = recurrence.current
        self.service.cancelRecurringJob(recurrence)
        transaction.commit()
        self.assertEqual(second.max_retries, 1)


class TestDerive(unittest.TestCase):
    layer = ZASYNC_INTEGRATION_TESTING

    def test_a_derived_job_has_the_identity_and_nothing_else(self):
        from collective.zasync.api import get_service

        portal = self.layer["portal"]
        setRoles(portal, TEST_USER_ID, ["Manager"])
        portal.portal_registry["collective.zasync.max_retries"] = 1
        get_service().getQueues()[""].quotas["x"] = 1
        job = get_service().queueJob(
            sample_jobs.add, portal, 1, b=2, quota_names=("x",), unique_key="k"
        )
        job.retries, job.attempts, job._result = 2, 3, 3
        copy = job.derive(begin_after=job.queued)
        for name in ("func_name", "func_obj", "func_attr", "args", "kwargs", "context_path",
                     "context_oid", "site_path", "userfolder_path", "user_id", "queue_name",
                     "quota_names", "max_retries"):
            self.assertEqual(getattr(copy, name), getattr(job, name), name)
        self.assertEqual(
            (copy.max_retries, copy.user_id, copy.quota_names), (1, TEST_USER_ID, ("x",))
        )
        self.assertIsNot(copy.kwargs, job.kwargs)
        self.assertNotEqual(copy.id, job.id)
        self.assertEqual(
            (copy.status, copy.result, copy.retries, copy.attempts), (interfaces.NEW, None, 0, 0)
        )
        self.assertEqual((copy.unique_key, copy.begin_after), (None, job.queued))
        with self.assertRaises(TypeError):
            job.derive(no_such_field=1)


class TestCallbackStatus(WorkerTestCase):
    def test_constant_is_zc_async_s(self):
        self.assertEqual(interfaces.CALLBACKS, "callback-status")

    def test_a_job_stored_with_the_old_value_loads_as_callbacks(self):
        job = self.portal._zasync_old_job = Job()
        job.status = "callbacks-status"  # what versions before issue 14 wrote
        transaction.commit()
        tm = transaction.TransactionManager()
        conn = self.layer["zodbDB"].open(transaction_manager=tm)
        try:
            loaded = conn.root()["Application"]["plone"]._zasync_old_job
            self.assertEqual(loaded.status, interfaces.CALLBACKS)
        finally:
            tm.abort()
            conn.close()
