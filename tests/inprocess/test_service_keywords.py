"""The keyword arguments the service takes (one list: client/options.py), never passed to the function."""

from collective.zasync.client.options import SERVICE_KEYWORDS
from collective.zasync.client.service import makeJob
from collective.zasync.interfaces import IAsyncService
from collective.zasync.testing import wait_for_result
from tests.support import input_jobs
from tests.support.base import WorkerTestCase

import transaction


class TestQuotaNamesAreTakenByTheService(WorkerTestCase):
    def setUp(self):
        super().setUp()
        self.service.getQueues()[""].quotas["x"] = 1

    def test_queue_job(self):
        job = self.service.queueJob(input_jobs.keywords, self.portal, other=1, quota_names=("x",))
        self.assertEqual(job.quota_names, ("x",))
        self.assertEqual(wait_for_result(job), ["other"])

    def test_queue_job_with_delay(self):
        job = self.service.queueJobWithDelay(
            None, None, input_jobs.keywords, self.portal, quota_names=["x"]
        )
        self.assertEqual(job.quota_names, ("x",))
        self.assertEqual(wait_for_result(job), [])

    def test_batch_items(self):
        self.service.getQueues()[""].quotas["y"] = 1
        batch = self.service.queueSerialJobsInQueue(
            "", ("x",),
            makeJob(input_jobs.keywords, self.portal, other=1, quota_names=("y",)),
            makeJob(input_jobs.keywords, self.portal),
        )
        self.assertEqual([sub.quota_names for sub in batch.subjobs], [("x", "y"), ("x",)])
        self.assertEqual([sub.result for sub in wait_for_result(batch)], [["other"], []])

    def test_recurring_job(self):
        job = self.service.queueRecurringJob(
            input_jobs.keywords, self.portal, 60, quota_names=("x",)
        )
        self.assertEqual((job.quota_names, job.kwargs), (("x",), {}))


class TestServiceKeywords(WorkerTestCase):
    """One list of what the service takes; a job function whose parameter has one of its names is refused."""

    def test_every_keyword_the_service_takes_is_in_its_contract(self):
        contract = IAsyncService.__doc__
        self.assertEqual([name for name in SERVICE_KEYWORDS if "``%s``" % name not in contract], [])

    def test_a_function_with_a_parameter_named_like_one_is_refused_at_queue_time(self):
        for func, parameter in ((input_jobs.prioritized, "priority"), (input_jobs.about_it, "about")):
            for queue in (lambda func=func: self.service.queueJob(func, self.portal),
                          lambda func=func: self.service.queueRecurringJob(func, self.portal, 3600),
                          lambda func=func: self.service.queueSerialJobs(makeJob(func, self.portal))):
                with self.assertRaises(ValueError) as raised:
                    queue()
                self.assertIn("Cannot queue %s: its parameter '%s' has the name of a keyword argument "
                              "that the service takes" % (func.__qualname__, parameter), str(raised.exception))
                self.assertIn("Rename the parameter.", str(raised.exception))
        transaction.commit()
        self.assertEqual(len(self.service.getQueues()[""]), 0, "nothing was queued")

    def test_the_queue_keyword_queues_there_and_is_not_passed_on(self):
        self.service.createQueue("reports")
        job = self.service.queueJob(input_jobs.keywords, self.portal, queue="reports", other=1)
        self.assertEqual(job.queue_name, "reports")
        self.assertEqual(wait_for_result(job), ["other"])

    def test_a_keyword_given_twice_or_where_it_does_not_apply_is_refused(self):
        with self.assertRaises(TypeError) as raised:
            self.service.queueJobInQueue("", (), input_jobs.keywords, self.portal, queue="reports")
        self.assertIn("multiple values for argument 'queue'", str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            self.service.queueSerialJobs(makeJob(input_jobs.keywords, self.portal, queue="reports"))
        self.assertIn("it runs in its batch's queue", str(raised.exception))
        with self.assertRaises(ValueError) as raised:
            self.service.queueRecurringJob(input_jobs.keywords, self.portal, 60, depends_on=())
        self.assertIn("a recurring job with a depends_on argument", str(raised.exception))
