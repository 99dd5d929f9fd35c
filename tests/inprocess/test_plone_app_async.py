"""plone.app.async's user documentation, scenario by scenario, after changing imports.

Its job functions are those of the porting guide (tests/support/porting_jobs.py,
module level, as a worker needs them). The user is a Member who owns a folder, as ``self.folder`` was in
plone.app.async's tests; the worker (two threads) runs in the test process.
"""

from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.core.failure import Failure
from collective.zasync.interfaces import IAsyncService
from collective.zasync.interfaces import IJobFailure
from collective.zasync.interfaces import IJobSuccess
from collective.zasync.client.service import makeJob
from collective.zasync.testing import wait_for_result
from collective.zasync.worker.settings import WorkerSettings
from AccessControl.unauthorized import Unauthorized
from Products.CMFCore.utils import getToolByName
from tests.support import sample_jobs
from tests.support.sample_jobs import job_failure_callback
from tests.support.sample_jobs import job_success_callback
from tests.support.porting_jobs import addNumbers
from tests.support.porting_jobs import createDocument
from tests.support.porting_jobs import failingJob
from tests.support.porting_jobs import submitObject
from tests.support.base import MemberFolderTestCase
from zope.component import getGlobalSiteManager
from zope.component import getUtility
from zope.component import provideHandler

import transaction


class PloneAppAsyncTestCase(MemberFolderTestCase):
    def setUp(self):
        super().setUp()
        self.async_ = getUtility(IAsyncService)  # (``async`` is a keyword in Python 3)
        sample_jobs.results.clear()

    def review_state(self, obj):
        return getToolByName(self.folder, "portal_workflow").getInfoFor(obj, "review_state")


class TestTheDocumentation(PloneAppAsyncTestCase):
    def test_a_simple_job(self):
        queue = self.async_.getQueues()[""]
        job = self.async_.queueJob(addNumbers, self.folder, 40, 2)
        self.assertEqual(len(queue), 1)
        self.assertEqual(job.status, "pending-status")
        transaction.commit()
        self.assertEqual(wait_for_result(job), 42)

    def test_jobs_of_the_default_queue_run_one_at_a_time_in_order(self):
        job = self.async_.queueJob(createDocument, self.folder, "foo", "title", "description", "body")
        job2 = self.async_.queueJob(submitObject, self.folder, "foo")
        transaction.commit()
        wait_for_result(job2)
        self.assertEqual(self.review_state(self.folder["foo"]), "pending")
        self.assertEqual(job.result, "foo")
        self.assertLessEqual(job.ended, job2.started, "the second started after the first ended")

    def test_in_order_also_when_queued_in_two_transactions(self):
        job = self.async_.queueJob(createDocument, self.folder, "foo", "title", "description", "body")
        transaction.commit()
        job2 = self.async_.queueJob(submitObject, self.folder, "foo")
        transaction.commit()
        wait_for_result(job2)
        self.assertFalse(job2.failed, job2.result)
        self.assertEqual(self.review_state(self.folder["foo"]), "pending")
        self.assertLessEqual(job.ended, job2.started)

    def test_a_serial_batch(self):
        job = self.async_.queueSerialJobs(
            makeJob(createDocument, self.folder, "bar", "title", "description", "body"),
            makeJob(submitObject, self.folder, "bar"))
        transaction.commit()
        res = wait_for_result(job)
        self.assertEqual(res[0].result, "bar")
        self.assertEqual(res[1].status, "completed-status")
        self.assertEqual(self.review_state(self.folder["bar"]), "pending")

    def test_a_job_runs_as_the_user_who_queued_it(self):
        job = self.async_.queueJob(createDocument, self.portal, "foo", "title", "description", "body")
        transaction.commit()
        result = wait_for_result(job)
        self.assertIsInstance(result, Failure)
        self.assertIs(result.type, Unauthorized)

    def test_callbacks(self):
        job = self.async_.queueJob(addNumbers, self.folder, 40, 2)
        job.addCallback(job_success_callback)
        transaction.commit()
        wait_for_result(job)
        self.assertEqual(sample_jobs.results, ["Success: 42"])
        sample_jobs.results.clear()
        job = self.async_.queueJob(failingJob, self.folder)
        job.addCallbacks(failure=job_failure_callback)
        transaction.commit()
        wait_for_result(job)
        [failure] = sample_jobs.results
        self.assertIsInstance(failure, Failure)
        self.assertIs(failure.type, RuntimeError)

    def test_success_and_failure_events(self):
        def successHandler(event):
            sample_jobs.results.append(event.object)

        def failureHandler(event):
            exc = event.object
            sample_jobs.results.append("%s: %s" % (exc.type.__name__, exc.value))

        provideHandler(successHandler, [IJobSuccess])
        provideHandler(failureHandler, [IJobFailure])
        try:
            self.async_.queueJob(addNumbers, self.folder, 40, 2)
            job2 = self.async_.queueJob(failingJob, self.folder)
            transaction.commit()
            wait_for_result(job2)  # (in order: the first one has run too)
            self.assertEqual(sample_jobs.results, [42, "RuntimeError: FooBared"])
        finally:
            gsm = getGlobalSiteManager()
            gsm.unregisterHandler(successHandler, [IJobSuccess])
            gsm.unregisterHandler(failureHandler, [IJobFailure])


class TestWithTwoWorkers(PloneAppAsyncTestCase):
    def setUp(self):
        super().setUp()
        settings = WorkerSettings(threads=2, poll_interval=0.2, ping_interval=1.0, death_interval=30.0)
        self.second = Dispatcher(self.layer["zodbDB"], "00000000-0000-0000-0000-0000second", settings)
        self.second.start()
        self.addCleanup(self.second.stop)

    def test_still_one_at_a_time_in_order(self):
        pairs = []
        for n in range(5):
            pairs.append((
                self.async_.queueJob(createDocument, self.folder, "doc%d" % n, "title", "description", "body"),
                self.async_.queueJob(submitObject, self.folder, "doc%d" % n),
            ))
        transaction.commit()
        for create, submit in pairs:
            wait_for_result(submit, seconds=60)
            self.assertFalse(submit.failed, submit.result)
        ran = sorted((job for pair in pairs for job in pair), key=lambda job: job.started)
        self.assertEqual(ran, [job for pair in pairs for job in pair], "started in queueing order")
        for earlier, later in zip(ran, ran[1:]):
            self.assertLessEqual(earlier.ended, later.started, "never two at once")
        self.assertEqual({self.review_state(self.folder["doc%d" % n]) for n in range(5)}, {"pending"})
