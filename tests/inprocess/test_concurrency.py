"""Many requests queueing at once: every job is queued, no ConflictError."""

from AccessControl.SecurityManagement import newSecurityManager
from AccessControl.SecurityManagement import noSecurityManager
from tests.support import sample_jobs
from collective.zasync.interfaces import COMPLETED
from collective.zasync.interfaces import IAsyncService
from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import ZASYNC_FUNCTIONAL_TESTING
from plone.app.testing import TEST_USER_ID
from Testing.makerequest import makerequest
from zope.component import getUtility
from zope.component.hooks import setSite

import threading
import time
import transaction
import unittest


THREADS = 8
JOBS_PER_THREAD = 200


class TestConcurrentQueueing(unittest.TestCase):
    layer = ZASYNC_FUNCTIONAL_TESTING

    def queue_jobs(self, number, errors, ids):
        db = self.layer["zodbDB"]
        conn = db.open()
        try:
            app = makerequest(conn.root()["Application"])
            portal = app.plone
            setSite(portal)
            user = portal.acl_users.getUserById(TEST_USER_ID)
            newSecurityManager(None, user.__of__(portal.acl_users))
            service = getUtility(IAsyncService)
            for n in range(JOBS_PER_THREAD):
                job = service.queueJob(sample_jobs.noop, portal)
                try:
                    transaction.commit()
                    ids.append(job.id)
                except Exception as exc:  # a ConflictError here is the failure
                    errors.append(repr(exc))
                    transaction.abort()
        finally:
            noSecurityManager()
            setSite(None)
            transaction.abort()
            conn.close()

    def test_8_threads_queue_200_jobs_each(self):
        errors, ids = [], []
        threads = [
            threading.Thread(target=self.queue_jobs, args=(n, errors, ids))
            for n in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(set(ids)), THREADS * JOBS_PER_THREAD)

        # And the worker runs each of them exactly once.
        deadline = time.monotonic() + 120
        while True:
            transaction.begin()
            queue = get_queue_root(self.layer["portal"]._p_jar).queues[""]
            if queue.completed_count() >= len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        finished = {job.id: job for job in queue.completed.values()}
        self.assertEqual(set(finished), set(ids))
        self.assertTrue(all(job.status == COMPLETED for job in finished.values()))
        self.assertEqual({job.attempts for job in finished.values()}, {1})


class TestLegacyJobList(unittest.TestCase):
    """1.0.0a1's list class still loads (migration.py then empties it)."""

    def test_state_of_first_development_versions_still_loads(self):
        from collective.zasync.core.legacy import JobList

        jobs = JobList()
        jobs.__setstate__({"_items": ("a",)})  # a tuple then, a list now
        jobs.append("b")
        self.assertEqual(list(jobs), ["a", "b"])
