"""Unique keys: one unfinished job per key (scoped: tests/inprocess/test_isolation.py); the retention."""

from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone.app.testing import login
from plone.app.testing import SITE_OWNER_NAME
from Testing.makerequest import makerequest
from tests.support import sample_jobs
from tests.support.base import WorkerTestCase
from ZODB.POSException import ConflictError
from zope.component.hooks import site

import transaction


class TestUniqueAndRetention(WorkerTestCase):
    def test_unique_key_returns_the_pending_job(self):
        first = self.service.queueJob(sample_jobs.add, self.portal, 1, unique_key="sum")
        again = self.service.queueJob(sample_jobs.add, self.portal, 2, unique_key="sum")
        self.assertIs(first, again)
        transaction.commit()
        self.assertIs(self.service.queueJob(sample_jobs.add, self.portal, 3, unique_key="sum"), first)
        self.assertEqual(wait_for_result(first), 1)
        later = self.service.queueJob(sample_jobs.add, self.portal, 4, unique_key="sum")
        self.assertIsNot(later, first)
        self.assertEqual(wait_for_result(later), 4)

    def test_two_requests_with_the_same_unique_key_queue_one_job(self):
        transaction.commit()
        tm = transaction.TransactionManager()
        conn = self.layer["zodbDB"].open(transaction_manager=tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        other_portal = makerequest(conn.root()["Application"])[self.portal.getId()]
        later = datetime.now(timezone.utc) + timedelta(hours=1)  # (still pending when the second looks)
        with site(other_portal):  # another request, in another connection
            first = self.service.queueJobWithDelay(None, later, sample_jobs.add, other_portal, 1, unique_key="once")
        self.service.queueJobWithDelay(None, later, sample_jobs.add, self.portal, 2, unique_key="once")
        tm.commit()
        with self.assertRaises(ConflictError):  # both wrote the key: the second request fails ...
            transaction.commit()
        transaction.abort()
        again = self.service.queueJob(sample_jobs.add, self.portal, 2, unique_key="once")  # ... and is retried
        self.assertEqual(again.id, first.id)
        transaction.commit()
        self.assertEqual([job.id for job in self.service.getQueues()[""].pending()], [first.id])

    def test_finished_jobs_are_removed_after_the_retention(self):
        jobs = [self.service.queueJob(sample_jobs.add, self.portal, n) for n in range(5)]
        for job in jobs:
            wait_for_result(job)
        dispatcher = self.layer["zasync_dispatcher"]
        wait_until(lambda: self.service.getQueues()[""].completed_count() == 5)
        self.assertEqual(dispatcher.remove_old_jobs(), 0)  # younger than 7 days
        dispatcher.settings.retention_days = 0  # zope.conf: the site's setting wins
        self.assertEqual(dispatcher.remove_old_jobs(), 0)
        # saved in the control panel (by the Zope root's Manager): copied onto the queue root for the workers
        login(self.layer["app"], SITE_OWNER_NAME)
        self.portal.portal_registry["collective.zasync.retention_days"] = 0
        transaction.commit()
        self.assertEqual(get_queue_root(self.portal._p_jar).retention_days, 0)
        self.assertEqual(dispatcher.remove_old_jobs(), 5)
        transaction.begin()
        queue = get_queue_root(self.portal._p_jar).queues[""]
        self.assertEqual(queue.completed_count(), 0)
        self.assertEqual(len(queue.completed), 0)
        self.assertIsNone(queue.get(jobs[0].id))
