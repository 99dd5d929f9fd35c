"""The health check sees a backlog at any priority."""

from collective.zasync.client import admin
from collective.zasync.client.metrics import oldest_due
from collective.zasync.client.transactional import transactional
from collective.zasync.core.job import utcnow
from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import wait_until
from datetime import timedelta
from tests.support import sample_jobs
from tests.support.base import WorkerTestCase

import transaction


class TestHealth(WorkerTestCase):

    def test_a_backlog_at_another_priority_counts(self):
        later = utcnow() + timedelta(hours=1)
        job = self.service.queueJobWithDelay(None, later, sample_jobs.noop, self.portal, priority=5)
        transaction.commit()
        root = get_queue_root(self.portal._p_jar)
        wait_until(lambda: job.id in root.queues[""].jobs, "the job filed")
        self.assertIsNone(oldest_due(root.queues[""], utcnow()))  # not due yet
        due = oldest_due(root.queues[""], later + timedelta(minutes=5))  # (once: None)
        self.assertAlmostEqual(due, later.timestamp(), places=3)

        @transactional
        def cancel():
            admin.cancel(job)

        cancel()
