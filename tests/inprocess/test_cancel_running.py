"""Cancelling a running job: it stops at its next set_progress() or check_cancelled(), none of its work kept."""

from collective.zasync.api import JobCancelled
from collective.zasync.client import admin
from collective.zasync.client import reading
from collective.zasync.core.failure import Failure
from collective.zasync.core.job import state_name
from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from plone.app.testing import TEST_USER_ID
from tests.support import runner_jobs
from tests.support.base import WorkerTestCase
from tests.support.sample_jobs import marks
from zope.component import getMultiAdapter

import transaction


class TestCancelRunning(WorkerTestCase):
    def run_and_cancel(self, explicit):
        runner_jobs.started.clear()
        job = self.service.queueJob(runner_jobs.loop_until_cancelled, self.portal, "loop", explicit)
        transaction.commit()
        self.assertTrue(runner_jobs.started.wait(10), "the job did not start")
        transaction.begin()
        self.assertEqual(state_name(job), "active")
        self.assertEqual(reading.available_actions(job), ["cancel"])  # job page button, REST action
        if explicit:  # from the control panel's list of active jobs
            panel = self.panel(queue="", state="active")
            self.assertIn('value="cancel"', panel().split('id="job-%s"' % job.id)[1].split("</tr>")[0])
            panel.do_action({"zasync.action": "cancel", "job_id": job.id, "queue": "", "state": "active"})
        else:
            self.assertIs(admin.cancel(job), job)
        self.assertEqual(reading.job_detail(job)["cancel_requested_by"], TEST_USER_ID)
        transaction.commit()
        with self.assertLogs("collective.zasync", level="ERROR"):
            result = wait_for_result(job)
        self.assertIsInstance(result, Failure)
        self.assertIs(result.type, JobCancelled)
        self.assertEqual(str(result), "JobCancelled: Cancelled by %s while it ran." % TEST_USER_ID)
        self.assertEqual(marks(self.portal), {}, "none of the job's work remains")
        self.assertEqual(dict(get_queue_root(job._p_jar).cancel_requests), {})
        return job

    def panel(self, **form):
        request = self.layer["request"]
        request.form.update(form)
        return getMultiAdapter((self.portal, request), name="zasync-controlpanel")

    def test_set_progress_raises_job_cancelled(self):
        self.run_and_cancel(explicit=False)

    def test_check_cancelled_raises_job_cancelled(self):
        job = self.run_and_cancel(explicit=True)
        with self.assertRaises(admin.ActionError):
            admin.cancel(job)  # finished: nothing to cancel

    def test_check_cancelled_outside_a_job(self):
        from collective.zasync.api import check_cancelled

        with self.assertRaises(RuntimeError):
            check_cancelled()
