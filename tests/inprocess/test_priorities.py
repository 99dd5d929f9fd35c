"""Priorities: among due jobs of a queue a higher one starts first, equal ones in queueing order."""

from collective.zasync.client import admin
from collective.zasync.client import reading
from collective.zasync.client.service import makeJob
from collective.zasync.core.job import state_name
from collective.zasync.core.job import utcnow
from collective.zasync.testing import wait_for_result
from datetime import timedelta
from tests.support import control_jobs
from tests.support.base import OwnWorkerTestCase
from tests.support.base import Queueing

import transaction


class TestPriorities(Queueing, OwnWorkerTestCase):
    """The layer's worker is stopped while jobs are queued: they are all due when one starts."""

    def setUp(self):
        super().setUp()
        control_jobs.starts.clear()

    def test_higher_priority_starts_first_equal_ones_in_queueing_order(self):
        self.service.createQueue("parallel")
        for queue in ("parallel", ""):  # no order promised / in order, one at a time
            jobs = [self.record(queue + label, queue=queue, priority=priority)
                    for label, priority in (("a", 0), ("b", 5), ("c", -3), ("d", 5), ("e", 0), ("f", 10))]
            transaction.commit()
            self.start_worker(threads=1)
            self.wait_for_all(jobs)
            self.worker.stop()
            self.assertEqual(control_jobs.labels(), [queue + label for label in "fbdaec"])
            self.assertTrue(all(job.result == job.args[0] for job in jobs))
            control_jobs.starts.clear()

    def test_a_delayed_high_priority_job_does_not_block_due_ones(self):
        later = self.record("later", priority=10, begin_after=utcnow() + timedelta(hours=1))
        due = [self.record("due%d" % n) for n in range(3)]
        transaction.commit()
        self.start_worker(threads=1)
        self.wait_for_all(due)
        self.assertEqual(control_jobs.labels(), ["due0", "due1", "due2"])
        self.assertEqual(state_name(later), "delayed")
        panel_delayed = list(reading.jobs_in_state(self._root(), self.service.getQueues()[""], "delayed"))
        self.assertEqual(panel_delayed, [later])
        admin.cancel(later)
        transaction.commit()

    def test_starvation_low_priority_work_in_its_own_queue_runs_between_busy_ones(self):
        # The promise (README): priorities are strict within a queue; queues take turns.
        self.service.createQueue("busy")
        self.service.createQueue("low")
        busy = [self.record("busy%d" % n, queue="busy", priority=10) for n in range(12)]
        low = self.record("low", queue="low", priority=-10)
        transaction.commit()
        self.start_worker(threads=1)
        self.wait_for_all(busy + [low])
        self.assertLess(control_jobs.labels().index("low"), 4)  # 3 queues: its turn comes within 3 claims

    def test_priority_of_recurring_runs_and_batch_jobs(self):
        job = self.service.queueRecurringJob(control_jobs.record, self.portal, 3600, "r", priority=3)
        self.assertEqual(job.recurrence.next_run(job).priority, 3)
        batch = self.service.queueParallelJobs(makeJob(control_jobs.record, self.portal, "x", priority=7),
                                               makeJob(control_jobs.record, self.portal, "y"))
        self.assertEqual([sub.priority for sub in batch.subjobs], [7, 0])
        self.service.cancelRecurringJob(job)
        transaction.abort()

    def test_bad_priorities_fail_at_queue_time(self):
        for bad, error in (("5", TypeError), (5.0, TypeError), (True, TypeError), (None, TypeError),
                           (11, ValueError), (-11, ValueError)):
            with self.assertRaises(error) as raised:
                self.record("x", priority=bad)
            self.assertIn("priority is", str(raised.exception))
        with self.assertRaises(ValueError):
            self.service.queueSerialJobs(makeJob(control_jobs.record, self.portal, "x", priority=99))
        with self.assertRaises(TypeError):
            self.service.queueRecurringJob(control_jobs.record, self.portal, 60, "x", priority="high")
        transaction.abort()

    def test_a_job_stored_without_a_priority_has_priority_0(self):
        job = self.record("old")
        del job.priority  # as jobs of layout 3 are stored: no attribute
        self.assertEqual(job.priority, 0)
        transaction.commit()
        self.start_worker(threads=1)
        self.assertEqual(wait_for_result(job), "old")

    def _root(self):
        from collective.zasync.core.queue import get_queue_root

        return get_queue_root(self.portal._p_jar)
