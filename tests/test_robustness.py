"""One job's trouble stays that job's: the worker, its threads and the other jobs go on.

Regression tests of issue 14: a deleted quota, a failing or interrupting
event subscriber, jobs claimed ahead of a stop, the time limit, the order of
due jobs and of queues, retention in bounded steps, the loop's error log.
"""

from tests import sample_jobs
from collective.zasync.dispatcher import Dispatcher
from collective.zasync.claiming import MAX_STARTS
from collective.zasync.events import JobSuccess
from collective.zasync.failure import Failure
from collective.zasync.interfaces import IJobFailure
from collective.zasync.interfaces import IJobSuccess
from collective.zasync.job import Job
from collective.zasync.job import utcnow
from collective.zasync.queue import file_finished
from collective.zasync.queue import get_queue_root
from collective.zasync.queue import RETENTION_BATCH
from collective.zasync.runner import has_subscribers
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.worker import WorkerSettings
from datetime import timedelta
from tests.base import OwnWorkerTestCase
from tests.base import WorkerTestCase
from zope.component import getGlobalSiteManager
from zope.interface import Interface

import contextlib
import transaction


@contextlib.contextmanager
def subscribed(handler, *required):
    """``handler`` subscribed to ``required`` for the duration of the block."""
    gsm = getGlobalSiteManager()
    gsm.registerHandler(handler, required)
    try:
        yield
    finally:
        gsm.unregisterHandler(handler, required)


class TestOneJobsTroubleStaysItsOwn(WorkerTestCase):
    def assert_worker_goes_on(self):
        dispatcher = self.layer["zasync_dispatcher"]
        self.assertTrue(all(thread.is_alive() for thread in dispatcher._threads), "a job thread died")
        job = self.service.queueJob(sample_jobs.add, self.portal, 40, b=2)
        self.assertEqual(wait_for_result(job, seconds=30), 42)

    def test_a_deleted_quota_fails_the_jobs_that_name_it_and_nothing_else(self):
        queue = self.service.createQueue("reports")
        queue.quotas["pdf"] = 0  # nothing may start yet
        blocked = self.service.queueJobInQueue("reports", ("pdf",), sample_jobs.add, self.portal, 1)
        transaction.commit()
        del queue.quotas["pdf"]
        plain = self.service.queueJob(sample_jobs.add, self.portal, 2)
        self.assertEqual(wait_for_result(plain), 2)
        result = wait_for_result(blocked)
        self.assertIsInstance(result, Failure)
        self.assertIs(result.type, LookupError)
        self.assertIn("Queue 'reports' has no quota 'pdf' any more", str(result))
        self.assert_worker_goes_on()

    def test_a_quota_whose_size_is_not_a_number_fails_its_jobs_only(self):
        queue = self.service.createQueue("reports")
        queue.quotas["pdf"] = 0
        blocked = self.service.queueJobInQueue("reports", ("pdf",), sample_jobs.add, self.portal, 1)
        transaction.commit()
        queue.quotas["pdf"] = "2"  # a typo of an add-on, after the job was queued
        plain = self.service.queueJob(sample_jobs.add, self.portal, 2)
        self.assertEqual(wait_for_result(plain), 2)
        self.assertIn("or its size is not a whole number", str(wait_for_result(blocked)))
        self.assert_worker_goes_on()

    def test_a_failing_subscriber_costs_a_timed_out_job_its_event_only(self):
        calls = []

        def broken(event):
            calls.append(event.job.id)
            raise RuntimeError("subscriber broken")

        past = utcnow() - timedelta(minutes=5)
        with subscribed(broken, IJobFailure):
            job = self.service.queueJobWithDelay(timedelta(seconds=1), past, sample_jobs.add, self.portal, 1)
            result = wait_for_result(job, seconds=30)
        self.assertIs(result.type, TimeoutError)
        self.assertEqual(calls, [job.id], "the event is fired once, not again and again")
        self.assertEqual(job.callback_claims, 1)
        self.assert_worker_goes_on()

    def test_an_interrupting_subscriber_neither_kills_a_thread_nor_loops_forever(self):
        calls = []

        def interrupting(event):
            calls.append(event.job.id)
            raise KeyboardInterrupt

        past = utcnow() - timedelta(minutes=5)
        with subscribed(interrupting, IJobFailure):
            job = self.service.queueJobWithDelay(timedelta(seconds=1), past, sample_jobs.add, self.portal, 1)
            result = wait_for_result(job, seconds=60)
        self.assertIs(result.type, TimeoutError)
        # each interrupted run leaves the job claimed with no thread: the next
        # pass gives it back; after MAX_STARTS such runs it completes without its event
        self.assertEqual(len(calls), MAX_STARTS)
        self.assertEqual(job.callback_claims, MAX_STARTS + 1)
        self.assert_worker_goes_on()

    def test_a_job_whose_worker_died_each_time_fails_instead_of_running_forever(self):
        job = self.service.queueJob(sample_jobs.add, self.portal, 1)
        job.attempts = MAX_STARTS  # as after MAX_STARTS killed workers
        result = wait_for_result(job)
        self.assertIs(result.type, RuntimeError)
        self.assertIn("was started %d times and never finished" % MAX_STARTS, str(result))
        self.assert_worker_goes_on()


class TestEventSavepoints(WorkerTestCase):
    def test_only_real_subscribers_count(self):
        # Zope subscribes a relay to every object event: that alone must not
        # make each job pay for a savepoint.
        job = self.service.queueJob(sample_jobs.add, self.portal, 1)
        event = JobSuccess(1, job)
        self.assertFalse(has_subscribers(event))
        with subscribed(lambda event: None, IJobSuccess):
            self.assertTrue(has_subscribers(event))
        with subscribed(lambda result, event: None, Interface, IJobSuccess):
            self.assertTrue(has_subscribers(event))


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
        wait_until(lambda: worker.busy == 4 and slow._p_oid in worker._running_since,
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
        dispatcher.tm = transaction.TransactionManager()
        dispatcher.conn = self.layer["zodbDB"].open(transaction_manager=dispatcher.tm)
        self.addCleanup(dispatcher.conn.close)
        return dispatcher

    def test_retention_removes_one_batch_per_pass(self):
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        for n in range(RETENTION_BATCH * 2 + 50):
            job = Job("tests.sample_jobs:add", args=(n,))
            job.ended = utcnow() - timedelta(days=30)
            file_finished(queue, job)
        transaction.commit()
        dispatcher = self.idle_dispatcher()
        self.assertEqual(dispatcher._retention_pass(), RETENTION_BATCH)
        self.assertTrue(dispatcher._retention_backlog, "the loop comes back at once for the rest")
        self.assertEqual(dispatcher.remove_old_jobs(), RETENTION_BATCH + 50)
        self.assertFalse(dispatcher._retention_backlog)

    def test_each_step_of_the_loop_reports_its_own_failure(self):
        dispatcher = self.idle_dispatcher()

        def broken():
            raise RuntimeError("retention broken")

        with self.assertLogs("collective.zasync") as logs:
            for _ in range(3):
                self.assertFalse(dispatcher._step("retention", broken))
                self.assertTrue(dispatcher._step("ping", lambda: None))
            self.assertTrue(dispatcher._step("retention", lambda: None))
        messages = [record.getMessage() for record in logs.records]
        self.assertEqual(messages, [
            "Worker idle: retention failed; retrying every second.",
            "Worker idle: retention works again.",
        ])
