"""Bad input is refused at queue time, in the request, with a clear error."""

from collective.zasync.client.service import makeJob
from collective.zasync.interfaces import IAsyncService
from collective.zasync.testing import ZASYNC_INTEGRATION_TESTING
from datetime import datetime
from datetime import timedelta
from OFS.SimpleItem import SimpleItem
from persistent.mapping import PersistentMapping
from plone.app.testing import setRoles
from plone.app.testing import TEST_USER_ID
from tests.support import sample_jobs
from zope.component import getUtility

import threading
import unittest


def exec_defined():
    """A function defined by exec'd code, as in a doctest: it has no importable module."""
    namespace = {"__name__": "doctest_module"}
    exec("def job(context):\n    return 1\n", namespace)
    return namespace["job"]


def make_closure():
    value = 1

    def closure(context):
        return value

    return closure


class NotPersistent:
    def method(self, context):
        return context


class TestBadInput(unittest.TestCase):
    layer = ZASYNC_INTEGRATION_TESTING

    def setUp(self):
        self.portal = self.layer["portal"]
        setRoles(self.portal, TEST_USER_ID, ["Manager"])
        self.service = getUtility(IAsyncService)

    def queue(self, *args, **kwargs):
        return self.service.queueJob(*args, **kwargs)

    def test_catalogue(self):
        portal = self.portal
        unknown = ("no-such-quota",)
        no_quota = "Queue '' has no quota 'no-such-quota'; create it first"

        def nested(context):
            return None

        cases = [
            # (description, call, exception, words the message must contain)
            ("lambda", lambda: self.queue(lambda c: c, portal), ValueError, "lambda"),
            ("nested function", lambda: self.queue(nested, portal), ValueError, "inside another function"),
            ("closure", lambda: self.queue(make_closure(), portal), ValueError, "inside another function"),
            ("method of a non-persistent object", lambda: self.queue(NotPersistent().method, portal), TypeError, "not a persistent object"),
            ("a class instance as callable", lambda: self.queue(NotPersistent(), portal), TypeError, "module-level function"),
            ("unpicklable argument", lambda: self.queue(sample_jobs.add, portal, threading.Lock()), TypeError, "cannot be pickled"),
            ("unsaved persistent argument", lambda: self.queue(sample_jobs.add, portal, PersistentMapping()), ValueError, "not in the database yet"),
            ("context not persistent", lambda: self.queue(sample_jobs.noop, object()), ValueError, "persistent object inside a Plone site"),
            ("context outside the site", lambda: self.queue(sample_jobs.noop, self.layer["app"]), ValueError, "not inside a Plone site"),
            ("unwrapped context", lambda: self.queue(sample_jobs.noop, SimpleItem()), ValueError, "not inside a Plone site"),
            ("unknown queue", lambda: self.service.queueJobInQueue("nope", (), sample_jobs.noop, portal), ValueError, "no queue named 'nope'"),
            ("unknown quota", lambda: self.service.queueJobInQueue("", ("nope",), sample_jobs.noop, portal), ValueError, "no quota 'nope'"),
            ("quota names as a string", lambda: self.service.queueJobInQueue("", "nope", sample_jobs.noop, portal), TypeError, "tuple of names"),
            ("naive begin_after", lambda: self.service.queueJobWithDelay(None, datetime.now(), sample_jobs.noop, portal), ValueError, "time zone"),
            ("begin_by not a timedelta", lambda: self.service.queueJobWithDelay(5, None, sample_jobs.noop, portal), TypeError, "timedelta"),
            ("empty batch", lambda: self.service.queueSerialJobs(), ValueError, "at least one job"),
            ("batch item not from makeJob", lambda: self.service.queueParallelJobs(sample_jobs.noop), TypeError, "makeJob"),
            ("bad job in a batch", lambda: self.service.queueSerialJobs(makeJob(lambda c: c, portal)), ValueError, "lambda"),
            # quota names, however they are given, are checked at once
            ("serial batch", lambda: self.service.queueSerialJobsInQueue(
                "", unknown, makeJob(sample_jobs.noop, portal)), ValueError, no_quota),
            ("parallel batch", lambda: self.service.queueParallelJobsInQueue(
                "", unknown, makeJob(sample_jobs.noop, portal)), ValueError, no_quota),
            ("batch quota names as a string", lambda: self.service.queueSerialJobsInQueue(
                "", "x", makeJob(sample_jobs.noop, portal)), TypeError, "tuple of names"),
            ("a batch item's own quota", lambda: self.service.queueSerialJobs(
                makeJob(sample_jobs.noop, portal), makeJob(sample_jobs.noop, portal, quota_names=unknown)),
             ValueError, no_quota),
            ("a batch item's unique_key", lambda: self.service.queueParallelJobs(
                makeJob(sample_jobs.noop, portal, unique_key="k")), ValueError, "batch with a unique_key"),
            ("queueJob's quota_names", lambda: self.service.queueJob(
                sample_jobs.noop, portal, quota_names=unknown), ValueError, no_quota),
            ("queueJobWithDelay's quota_names", lambda: self.service.queueJobWithDelay(
                None, None, sample_jobs.noop, portal, quota_names=unknown), ValueError, no_quota),
            ("queueJob's quota_names as a string", lambda: self.service.queueJob(
                sample_jobs.noop, portal, quota_names="x"), TypeError, "tuple of names"),
            ("a recurring job's quota", lambda: self.service.queueRecurringJob(
                sample_jobs.noop, portal, 60, quota_names=unknown), ValueError, no_quota),
            ("a recurring job's unique_key", lambda: self.service.queueRecurringJob(
                sample_jobs.noop, portal, 60, unique_key="k"), ValueError, "a recurring job with a unique_key"),
            ("a function from exec'd code (a doctest)", lambda: self.queue(exec_defined(), portal),
             ValueError, "not defined in an importable module"),
            ("a queue's concurrency of 0", lambda: self.service.createQueue("q", concurrency=0),
             ValueError, "at least 1"),
            ("a queue's concurrency as a string", lambda: self.service.createQueue("q", concurrency="2"),
             ValueError, "whole number"),
            ("a quota whose size is a string", lambda: self.queue_with_quota_size("2"),
             ValueError, "set a whole number"),
        ]
        queue = self.service.getQueues()[""]
        for description, call, exception, words in cases:
            with self.subTest(description):
                before = len(queue)
                with self.assertRaises(exception) as raised:
                    call()
                self.assertIn(words, str(raised.exception))
                self.assertEqual(len(queue), before, "nothing was queued")

    def queue_with_quota_size(self, size):
        self.service.getQueues()[""].quotas["sized"] = size
        try:
            return self.service.queueJobInQueue("", ("sized",), sample_jobs.noop, self.portal)
        finally:
            del self.service.getQueues()[""].quotas["sized"]

    def test_good_input_is_accepted(self):
        job = self.service.queueJobWithDelay(
            timedelta(minutes=5), datetime.now().astimezone() + timedelta(minutes=1),
            sample_jobs.add, self.portal, 1, b=2,
        )
        self.assertEqual(job.args, (1,))
        self.assertEqual(job.kwargs, {"b": 2})
        self.assertEqual(job.context_path, "/plone")
        self.assertEqual(job.user_id, TEST_USER_ID)
        self.assertEqual(job.userfolder_path, "/plone/acl_users")
        # a builtin and a method of a persistent object are fine too
        self.assertEqual(self.queue(len, self.portal).func_name, "builtins:len")
        method_job = self.queue(self.portal.getId, self.portal)
        self.assertEqual((method_job.func_obj.path, method_job.func_attr), ("/plone", "getId"))

    def test_nothing_from_the_request_is_stored(self):
        request = self.layer["request"]
        request.environ["HTTP_AUTHORIZATION"] = "Basic c2VjcmV0OnNlY3JldA=="
        request.cookies["__ac"] = "secret-cookie"
        job = self.queue(sample_jobs.add, self.portal, 1)
        stored = repr(job.__getstate__())
        self.assertNotIn("secret", stored)
        self.assertNotIn("c2VjcmV0", stored)
