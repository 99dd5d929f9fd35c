"""What wakes a dispatcher: other connections' commits to what it watches, not its own."""

from collective.zasync.invalidations import unwatch_invalidations
from collective.zasync.invalidations import watch_invalidations
from collective.zasync.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from tests import sample_jobs
from tests.base import OwnWorkerTestCase

import transaction


class TestWakeUps(OwnWorkerTestCase):

    def test_a_commit_names_the_connection_that_made_it(self):
        seen = []

        def callback(oids, committer):
            seen.append((set(oids), committer))

        db = self.layer["zodbDB"]
        self.assertTrue(watch_invalidations(db, callback))
        self.addCleanup(unwatch_invalidations, db, callback)
        tm = transaction.TransactionManager()
        conn = db.open(transaction_manager=tm)
        self.addCleanup(conn.close)
        root = get_queue_root(conn)
        root.queues[""].limit_mark.claims += 1  # any object of the queue
        tm.commit()
        oid = root.queues[""].limit_mark._p_oid
        self.assertIn(conn._storage, [committer for oids, committer in seen if oid in oids])

    def test_its_own_commits_do_not_wake_a_dispatcher(self):
        worker = self.start_worker()
        worker.wakeup.clear()
        watched = set(worker._watched)
        self.assertTrue(watched)  # inboxes, counts, done logs
        worker._on_invalidation(watched, worker.conn._storage)  # its own pass wrote them
        self.assertFalse(worker.wakeup.is_set())
        worker._on_invalidation(watched, None)  # another process did
        self.assertTrue(worker.wakeup.is_set())

    def test_jobs_queued_by_a_request_wake_it(self):
        worker = self.start_worker(poll_interval=60.0)  # no poll would find them in time
        job = self.service.queueJob(sample_jobs.add, self.portal, 1, 1)
        transaction.commit()
        self.assertEqual(wait_for_result(job, seconds=20), 2)
        self.assertEqual(worker.poll_interval, 60.0)
