"""The dispatcher: the order of due jobs and of queues, stopping, its loop's steps and their errors."""

from collective.zasync.core.job import Job
from collective.zasync.core.job import utcnow
from collective.zasync.core.lifecycle import file_finished
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.records import WorkerRecord
from collective.zasync.defaults import RETENTION_BATCH
from collective.zasync.defaults import RETENTION_FIRST
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.settings import WorkerSettings
from datetime import timedelta
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase

import time
import transaction


class TestOrder(OwnWorkerTestCase):
    def test_a_delayed_job_that_became_due_runs_before_jobs_queued_after(self):
        delayed = self.service.queueJobWithDelay(
            None, utcnow() + timedelta(seconds=1), sample_jobs.record, self.portal, "delayed")
        transaction.commit()
        wait_until(lambda: utcnow() > delayed.begin_after, "the delayed job to be due (no worker runs)")
        later = [self.service.queueJob(sample_jobs.record, self.portal, "later %d" % n) for n in range(3)]
        transaction.commit()
        self.start_worker()
        for job in later + [delayed]:
            wait_for_result(job)
        self.assertEqual(sample_jobs.ran, ["delayed", "later 0", "later 1", "later 2"])

    def test_queues_take_turns(self):
        self.service.createQueue("other")
        defaults = [self.service.queueJob(sample_jobs.record, self.portal, "default %d" % n) for n in range(6)]
        other = self.service.queueJobInQueue("other", (), sample_jobs.record, self.portal, "other")
        transaction.commit()
        self.start_worker()
        for job in defaults + [other]:
            wait_for_result(job)
        self.assertLess(sample_jobs.ran.index("other"), 2, sample_jobs.ran)


class TestStopping(OwnWorkerTestCase):
    def test_jobs_claimed_ahead_do_not_start_once_the_worker_stops(self):
        self.service.createQueue("parallel")  # (the default queue runs one job at a time)
        slow = self.service.queueJobInQueue("parallel", (), sample_jobs.record, self.portal, "slow", seconds=1.5)
        quick = [self.service.queueJobInQueue("parallel", (), sample_jobs.record, self.portal, "quick %d" % n)
                 for n in range(3)]
        transaction.commit()
        worker = self.start_worker(average_run=0.001)
        wait_until(lambda: worker.busy == 4 and slow._p_oid in worker.holdings.running_since,
                   "the slow job to run and the quick ones to be claimed behind it")
        worker.stop(timeout=10)
        self.assertEqual(sample_jobs.ran, ["slow"], "nothing started once stopping")
        transaction.begin()
        self.assertEqual(wait_for_result(slow), "slow")
        queue = self.service.getQueues()["parallel"]
        self.assertEqual(sorted(job.id for job in queue.pending()), sorted(job.id for job in quick))
        self.start_worker()
        for job in quick:
            wait_for_result(job)
        self.assertEqual(sorted(sample_jobs.ran), ["quick 0", "quick 1", "quick 2", "slow"], "each ran once")

    def test_the_time_limit_counts_from_the_start_not_from_the_claim(self):
        self.service.createQueue("parallel")  # (the default queue runs one job at a time)
        first = self.service.queueJobInQueue("parallel", (), sample_jobs.record, self.portal, "first", seconds=2)
        second = self.service.queueJobInQueue("parallel", (), sample_jobs.record, self.portal, "second", seconds=2)
        transaction.commit()
        # both claimed at once: the second waits 2 s for the thread, runs 2 s
        self.start_worker(average_run=0.001, time_limit=3)
        self.assertEqual(wait_for_result(first, seconds=30), "first")
        self.assertEqual(wait_for_result(second, seconds=30), "second")


class TestLoopSteps(OwnWorkerTestCase):
    def idle_dispatcher(self):
        """A dispatcher with a connection, whose loop does not run."""
        dispatcher = Dispatcher(self.layer["zodbDB"], "idle", WorkerSettings())
        dispatcher.connect()
        self.addCleanup(dispatcher.conn.close)
        return dispatcher

    def test_retention_removes_one_batch_per_pass(self):
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        for n in range(RETENTION_BATCH * 2 + 50):
            job = Job("tests.support.sample_jobs:add", args=(n,))
            job.ended = utcnow() - timedelta(days=30)
            file_finished(queue, job)
        transaction.commit()
        dispatcher = self.idle_dispatcher()
        self.assertEqual(dispatcher.retention_pass(), RETENTION_BATCH)
        self.assertTrue(dispatcher.loop_state.retention_backlog, "the loop comes back at once for the rest")
        self.assertEqual(dispatcher.remove_old_jobs(), RETENTION_BATCH + 50)
        self.assertFalse(dispatcher.loop_state.retention_backlog)

    def test_only_the_finisher_removes_expired_jobs(self):
        """Two workers removing the same oldest jobs would conflict on every batch: the
        finisher (the first live worker by uuid) removes them, the others leave them."""
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        for n in range(5):
            job = Job("tests.support.sample_jobs:add", args=(n,))
            job.ended = utcnow() - timedelta(days=30)
            file_finished(queue, job)
        root.workers["!first"] = WorkerRecord("!first", threads=1)  # alive: it pinged now
        transaction.commit()
        started = time.monotonic()
        worker = self.start_worker()
        wait_until(lambda: time.monotonic() > started + RETENTION_FIRST + 1 and worker.loop_state.passes > 2,
                   "the worker's first retention run to be due", seconds=30)
        self.assertFalse(worker.loop_state.finisher)
        self.assertEqual(queue.completed_count(), 5, "left to the finisher")
        del root.workers["!first"]  # (it stopped): this worker is the finisher now
        transaction.commit()
        wait_until(lambda: queue.completed_count() == 0, "the finisher to remove the expired jobs")
        self.assertEqual(len(queue.jobs), 0)

    def test_each_step_of_the_loop_reports_its_own_failure(self):
        dispatcher = self.idle_dispatcher()

        def broken():
            raise RuntimeError("retention broken")

        with self.assertLogs("collective.zasync") as logs:
            for _ in range(3):
                self.assertFalse(dispatcher.step("retention", broken))
                self.assertTrue(dispatcher.step("ping", lambda: None))
            self.assertTrue(dispatcher.step("retention", lambda: None))
        messages = [record.getMessage() for record in logs.records]
        self.assertEqual(messages, [
            "Worker idle: retention failed; retrying every second.",
            "Worker idle: retention works again.",
        ])
