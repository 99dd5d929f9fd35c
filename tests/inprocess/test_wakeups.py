"""What wakes a dispatcher: other connections' commits to what it watches, not its own;
jobs added to ``waiting`` only when it would claim (jobs taken out of it: never); done logs
only the finisher."""

from collective.zasync.worker import filing
from collective.zasync.worker.invalidations import unwatch_invalidations
from collective.zasync.worker.invalidations import watch_invalidations
from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase
from tests.support.base import TwoWorkersPlayedTestCase
from unittest import mock

import time
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
        watched = set(worker.wakeups.watched)
        self.assertTrue(watched)  # inboxes, counts, done logs
        worker.on_invalidation(watched, worker.conn._storage)  # its own pass wrote them
        self.assertFalse(worker.wakeup.is_set())
        worker.on_invalidation(watched, None)  # another process did
        self.assertTrue(worker.wakeup.is_set())

    def test_jobs_queued_by_a_request_wake_it(self):
        # Neither a poll nor a ping would wake its loop within the minute (the loop also
        # wakes up to ping): only the request's commit can, in time.
        worker = self.start_worker(poll_interval=60.0, ping_interval=60.0, death_interval=180.0)
        job = self.service.queueJob(sample_jobs.add, self.portal, 1, 1)
        transaction.commit()
        self.assertEqual(wait_for_result(job, seconds=20), 2)
        self.assertEqual(worker.poll_interval, 60.0)

    def test_waiting_wakes_it_only_when_it_would_claim(self):
        worker = self.start_worker()
        root = get_queue_root(worker.conn)
        queue = root.queues[""]
        inbox_count, waiting_added = {queue.inbox_count._p_oid}, {queue.waiting_added._p_oid}
        self.assertEqual(worker.wakeups.watched_if_hungry, waiting_added)
        worker.wakeup.clear()
        worker.on_invalidation({queue.waiting_count._p_oid}, None)  # the finisher claimed: nothing to take
        self.assertFalse(worker.wakeup.is_set())
        with mock.patch.object(worker, "hungry", return_value=False):  # jobs claimed ahead for its threads
            worker.on_invalidation(waiting_added, None)  # the finisher filed jobs
            self.assertFalse(worker.wakeup.is_set())
            worker.on_invalidation(inbox_count, None)  # a new inbox: always
            self.assertTrue(worker.wakeup.is_set())
        worker.wakeup.clear()
        self.assertTrue(worker.hungry())  # an idle thread, nothing claimed
        worker.on_invalidation(waiting_added, None)
        self.assertTrue(worker.wakeup.is_set())

    def test_only_jobs_steered_elsewhere_it_sleeps_until_the_waiting_jobs_change(self):
        # Its pass found only jobs steered to another worker (dispatcher.file_and_claim): it does
        # not look again every STEERED_QUIET seconds, only once jobs were added meanwhile.
        worker = self.start_worker(poll_interval=30.0, ping_interval=60.0, death_interval=180.0)
        state = worker.loop_state
        state.backlog = state.retention_backlog = False
        state.next_due = None
        state.quiet_until = time.monotonic() + 5.0
        worker.wakeups.claimable = False
        self.assertGreater(worker.sleep_time(), 20.0)
        worker.wakeups.claimable = True  # jobs were added to waiting: look once the quiet ends
        self.assertLessEqual(worker.sleep_time(), 5.0)
        self.assertFalse(worker.pass_needed())  # (not before)

    def test_a_thread_that_asked_during_a_pass_that_served_it_costs_no_second_pass(self):
        worker = self.start_worker(average_run=0.01)  # short jobs: claimed ahead
        worker.wakeups.invalidated = worker.loop_state.backlog = False
        worker.loop_state.next_due = None
        with mock.patch.object(worker, "hungry", return_value=False):  # that pass claimed for it
            self.assertFalse(worker.pass_needed())
            worker.wakeups.invalidated = True  # a commit of another process came meanwhile
            self.assertTrue(worker.pass_needed())
            self.assertFalse(worker.pass_needed())  # (once)
            worker.holdings.average_run = 5.0  # long jobs: what ended is filed at once
            self.assertTrue(worker.pass_needed())
        worker.holdings.average_run = 0.01
        self.assertTrue(worker.pass_needed())  # an idle thread: claim


class TestWhatWakesWhom(TwoWorkersPlayedTestCase):

    def test_done_logs_wake_only_the_finisher(self):
        root = get_queue_root(self.portal._p_jar)
        self.service.queueJob(sample_jobs.noop, self.portal)  # an inbox
        done = filing.done_log(root.workers["b"])  # b's completed jobs, for the finisher a to file
        transaction.commit()
        finisher_watches, _ = filing.wake_oids(root, filing.finisher(root, "a"))
        other_watches, other_if_hungry = filing.wake_oids(root, filing.finisher(root, "b"))
        self.assertIn(done._p_oid, finisher_watches)
        self.assertNotIn(done._p_oid, other_watches)
        inboxes = {inbox._p_oid for inbox in root.queues[""].inboxes.values()}
        self.assertTrue(inboxes and inboxes <= other_watches and inboxes <= finisher_watches)
        self.assertEqual(other_if_hungry, {root.queues[""].waiting_added._p_oid})
