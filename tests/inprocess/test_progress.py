"""Progress reported from a running job (api.set_progress), read from anywhere (api.get_progress)."""

from collective.zasync.api import get_progress
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from tests.support import sample_jobs
from tests.support.base import WorkerTestCase

import transaction


class TestProgress(WorkerTestCase):
    def test_progress_is_visible_while_the_job_runs(self):
        sample_jobs.gate.clear()
        job = self.service.queueJob(sample_jobs.report_progress, self.portal)
        self.assertEqual(get_progress(job), (-1, None))
        transaction.commit()
        try:
            wait_until(lambda: get_progress(job) == (50, {"step": "half"}))
        finally:
            sample_jobs.gate.set()
        self.assertEqual(wait_for_result(job), "done")
        self.assertIsNone(get_progress(job))

    def test_set_progress_outside_a_job_or_out_of_range(self):
        from collective.zasync.api import set_progress

        with self.assertRaises(RuntimeError):
            set_progress(10)
