"""How many short jobs a worker claims ahead of its threads: about PREFETCH_SECONDS of them."""

from collective.zasync.defaults import PREFETCH
from collective.zasync.defaults import PREFETCH_FILING
from collective.zasync.defaults import PREFETCH_SECONDS
from collective.zasync.defaults import SHORT_JOB
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.settings import WorkerSettings
from collective.zasync.worker.shared import Holdings

import unittest


class TestClaimingAhead(unittest.TestCase):

    def ahead(self, average_run):
        holdings = Holdings()
        holdings.average_run = average_run
        return holdings.ahead()

    def test_none_before_a_job_ran_nor_for_long_jobs(self):
        self.assertEqual(self.ahead(None), 0)
        self.assertEqual(self.ahead(SHORT_JOB), 0)
        self.assertEqual(self.ahead(30.0), 0)

    def test_about_prefetch_seconds_of_short_jobs_per_thread(self):
        self.assertEqual(self.ahead(PREFETCH_SECONDS / 10), 10)
        self.assertEqual(self.ahead(PREFETCH_SECONDS / 4), 4)
        # a job almost long: some ahead still, so that the thread never waits for a pass
        self.assertGreaterEqual(self.ahead(SHORT_JOB * 0.99), 1)

    def test_at_most_prefetch_however_short(self):
        self.assertEqual(self.ahead(PREFETCH_SECONDS / (10 * PREFETCH)), PREFETCH)
        self.assertEqual(self.ahead(0.0), PREFETCH)

    def test_fewer_while_its_passes_file_a_backlog(self):
        dispatcher = Dispatcher(None, "a", WorkerSettings(threads=2))
        dispatcher.holdings.average_run = PREFETCH_SECONDS / (10 * PREFETCH)  # very short jobs
        self.assertEqual(dispatcher.capacity(), 2 * (1 + PREFETCH))
        dispatcher.loop_state.backlog = True  # jobs left in an inbox or a done log
        self.assertEqual(dispatcher.capacity(), 2 * (1 + PREFETCH_FILING))
        dispatcher.holdings.average_run = 30.0  # long jobs: for idle threads only, as ever
        self.assertEqual(dispatcher.capacity(), 2)
