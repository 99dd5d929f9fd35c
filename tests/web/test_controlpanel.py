"""Site Setup > Background jobs, over real HTTP: counts, job lists, job page,
POST actions with plone.protect's authenticator, and the settings form."""

from collective.zasync import interfaces
from tests.support import sample_jobs
from collective.zasync.core.job import Job
from collective.zasync.core.job import utcnow
from collective.zasync.core.lifecycle import file_finished
from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from datetime import timedelta
from tests.support.panel import PanelTestCase

import transaction


def counts_on_page(page, queue_name=""):
    """{state: count} of the queue's row in the panel's queue table."""
    row = page.xpath('//tr[@data-queue="%s"]' % queue_name)[0]
    return {
        cell.get("class").replace("zasync-count-", ""): int(cell.text_content().strip())
        for cell in row.xpath('td[starts-with(@class, "zasync-count-")]')
    }


def add_finished_jobs(queue, count):
    """File ``count`` completed jobs straight into ``queue`` (fast, for paging)."""
    now = utcnow()
    for number in range(count):
        job = Job("tests.support.sample_jobs:noop", None, None, (), {})
        job.queue_name = queue.name
        job.context_path = "/plone"
        job.status = interfaces.COMPLETED
        job._result = number
        job.queued = job.started = job.ended = now - timedelta(seconds=number)
        queue.jobs[job.id] = job
        file_finished(queue, job)


class TestControlPanel(PanelTestCase):
    def test_configlet_in_site_setup_opens_the_panel(self):
        page = self.get_page("@@overview-controlpanel")
        links = page.xpath('//a[contains(@href, "@@zasync-controlpanel")]')
        self.assertTrue(links, "no Background jobs configlet in Site Setup")
        self.assertIn("Background jobs", links[0].text_content())
        self.assertTrue(page.xpath('//a[contains(@href, "@@zasync-controlpanel")]//svg'), "no icon")
        panel = self.get_page("@@zasync-controlpanel")
        self.assertEqual(panel.xpath("//h1")[0].text_content().strip(), "Background jobs")

    def test_counts_by_state_and_workers(self):
        self.queue_jobs_in_every_state()
        page = self.get_page("@@zasync-controlpanel")
        self.assertEqual(
            counts_on_page(page, ""),
            {"pending": 0, "delayed": 1, "active": 0, "failed": 1, "completed": 1},
        )
        self.assertEqual(
            counts_on_page(page, "held"),
            {"pending": 1, "delayed": 0, "active": 0, "failed": 0, "completed": 0},
        )
        workers = page.xpath('//tr[contains(@class, "zasync-worker")]')
        self.assertEqual(len(workers), 1)
        text = workers[0].text_content()
        self.assertIn(self.layer.worker_uuid, text)
        self.assertIn("alive", text)
        self.assertIn("zasync-alive", workers[0].get("class"))

    def test_job_lists_show_callable_context_user_times_and_retries(self):
        jobs = self.queue_jobs_in_every_state()
        page = self.get_page("@@zasync-controlpanel", queue="", state="failed")
        rows = page.xpath('//tr[contains(@class, "zasync-job")]')
        self.assertEqual([row.get("id") for row in rows], ["job-%s" % jobs["failed"].id])
        text = rows[0].text_content()
        for expected in ("tests.support.sample_jobs.fail_first_attempt", "/plone", "test_user_1_",
                         "The first attempt fails on purpose", "0 / 1", "UTC"):
            self.assertIn(expected, text)
        self.assertTrue(rows[0].xpath('.//button[@value="retry"]'))
        page = self.get_page("@@zasync-controlpanel", queue="", state="delayed")
        rows = page.xpath('//tr[contains(@class, "zasync-job")]')
        self.assertEqual([row.get("id") for row in rows], ["job-%s" % jobs["delayed"].id])
        self.assertTrue(rows[0].xpath('.//button[@value="cancel"]'))

    def test_running_job_shows_a_progress_bar(self):
        sample_jobs.gate.clear()
        job = self.service.queueJob(sample_jobs.report_progress, self.portal)
        transaction.commit()
        try:
            for _ in range(200):
                page = self.get_page("@@zasync-controlpanel", queue="", state="active")
                bars = page.xpath('//tr[@id="job-%s"]//div[@role="progressbar"]' % job.id)
                if bars and bars[0].get("aria-valuenow") != "0":  # 0: running, set_progress not yet seen
                    break
            self.assertEqual(bars[0].get("aria-valuenow"), "50")
            self.assertIn("width: 50%", bars[0].get("style"))
        finally:
            sample_jobs.gate.set()
        self.assertEqual(wait_for_result(job), "done")

    def test_100000_completed_jobs_are_paged(self):
        queue = self.service.getQueues()[""]
        add_finished_jobs(queue, 100_000)
        transaction.commit()
        page = self.get_page("@@zasync-controlpanel", queue="", state="completed")
        self.assertEqual(counts_on_page(page)["completed"], 100_000)
        self.assertEqual(len(page.xpath('//tr[contains(@class, "zasync-job")]')), 50)
        self.assertIn("Jobs 1 to 50 of 100000.", " ".join(page.text_content().split()))
        page = self.get_page("@@zasync-controlpanel", queue="", state="completed", b_start=99_990)
        rows = page.xpath('//tr[contains(@class, "zasync-job")]')
        self.assertEqual(len(rows), 10)
        self.assertFalse(page.xpath('//a[contains(@class, "zasync-next")]'))
        self.assertTrue(page.xpath('//a[contains(@class, "zasync-previous")]'))

    def test_job_page_shows_arguments_result_and_traceback(self):
        jobs = self.queue_jobs_in_every_state()
        long_text = "x" * 1000
        job = self.service.queueJob(sample_jobs.fail, self.portal, long_text)
        wait_for_result(job)
        page = self.get_page("@@zasync-job", id=job.id)
        arguments = page.xpath('//tr[th="Arguments"]/td')[0].text_content()
        self.assertIn("xxx", arguments)
        self.assertLess(len(arguments), 300, "long arguments are truncated")
        traceback = page.xpath('//pre[@id="zasync-traceback"]')[0].text_content()
        self.assertIn("Traceback (most recent call last)", traceback)
        self.assertIn("raise ValueError(message)", traceback)
        page = self.get_page("@@zasync-job", id=jobs["completed"].id)
        self.assertEqual(page.xpath('//code[@id="zasync-job-result"]')[0].text_content(), "42")
        self.assertFalse(page.xpath('//pre[@id="zasync-traceback"]'))
        response = self.session().get(self.url("@@zasync-job"), params={"id": "no-such-job"})
        self.assertEqual(response.status_code, 404)


class TestActions(PanelTestCase):
    def test_retry_a_failed_job_runs_it_again_as_its_user(self):
        jobs = self.queue_jobs_in_every_state()
        job = jobs["failed"]
        response = self.post_action(**{"zasync.action": "retry", "job_id": job.id, "queue": "", "state": "failed"})
        self.assertEqual(response.status_code, 302)
        self.assertEqual(wait_for_result(job), "succeeded on attempt 2")
        self.assertEqual(job.user_id, "test_user_1_", "never the administrator who clicked")

    def test_cancel_a_delayed_and_a_pending_job(self):
        jobs = self.queue_jobs_in_every_state()
        for state, queue in (("delayed", ""), ("pending", "held")):
            job = jobs[state]
            response = self.post_action(**{"zasync.action": "cancel", "job_id": job.id, "queue": queue,
                                           "state": state})
            self.assertEqual(response.status_code, 302)
            transaction.begin()
            self.assertEqual(job.status, interfaces.COMPLETED)
            self.assertIn("Cancelled", str(job.result))
        page = self.get_page("@@zasync-controlpanel")
        self.assertEqual(counts_on_page(page, "held")["failed"], 1)

    def test_remove_one_and_remove_all(self):
        jobs = self.queue_jobs_in_every_state()
        self.post_action(**{"zasync.action": "remove", "job_id": jobs["completed"].id})
        transaction.begin()
        queue = self.service.getQueues()[""]
        self.assertIsNone(queue.get(jobs["completed"].id))
        self.assertEqual(queue.completed_count(), 0)
        self.post_action(**{"zasync.action": "remove-all", "queue": "", "state": "failed"})
        transaction.begin()
        self.assertEqual(queue.failed_count(), 0)
        self.assertIsNone(queue.get(jobs["failed"].id))

    def test_no_token_or_get_changes_nothing(self):
        jobs = self.queue_jobs_in_every_state()
        failed = jobs["failed"]
        form = {"zasync.action": "remove", "job_id": failed.id}
        for response in (
            self.post_action(token=False, **form),
            self.post_action(token="forged", **form),
            self.session().get(self.url("@@zasync-controlpanel"), params=form, allow_redirects=False),
        ):
            self.assertEqual(response.status_code, 403, response.text[:500])
        transaction.begin()
        queue = self.service.getQueues()[""]
        self.assertIs(queue.get(failed.id), failed)
        self.assertEqual(queue.failed_count(), 1)

    def test_action_that_does_not_apply_shows_an_error(self):
        jobs = self.queue_jobs_in_every_state()
        session = self.session()
        form = {"zasync.action": "retry", "job_id": jobs["completed"].id,
                "_authenticator": self.token()}
        page = self.html(session.post(self.url("@@zasync-controlpanel"), data=form))
        self.assertIn("Only a failed job can be retried", page.text_content())


class TestSettingsForm(PanelTestCase):
    def test_settings_are_saved_and_reach_the_workers(self):
        # (by the Zope root's Manager: the retention and the default queue's
        # concurrency apply to the whole queue database; tests/web/test_security_http.py)
        page = self.get_page("@@zasync-settings", "owner")
        self.assertTrue(page.xpath('//input[@name="form.widgets.retention_days"]'))
        form = {
            "form.widgets.retention_days": "3",
            "form.widgets.max_retries": "2",
            "form.widgets.default_queue_concurrency": "4",
            "form.buttons.save": "Save",
            "_authenticator": self.token("owner"),
        }
        response = self.session("owner").post(self.url("@@zasync-settings"), data=form)
        self.assertEqual(response.status_code, 200)
        transaction.begin()
        registry = self.portal.portal_registry
        self.assertEqual(registry["collective.zasync.retention_days"], 3)
        self.assertEqual(registry["collective.zasync.max_retries"], 2)
        self.assertEqual(get_queue_root(self.portal._p_jar).retention_days, 3)
        self.assertEqual(registry["collective.zasync.default_queue_concurrency"], 4)
        self.assertEqual(get_queue_root(self.portal._p_jar).queues[""].concurrency, 4)
        job = self.service.queueJob(sample_jobs.add, self.portal, 1)
        self.assertEqual(job.max_retries, 2)
        transaction.abort()


class TestNoDemo(PanelTestCase):
    def test_a_site_with_the_add_on_has_no_demo_pages(self):
        # (make run's instance includes collective.zasync.dev.demo; tests/web/test_demo.py)
        for page in ("@@zasync-demo", "@@zasync-demo-job"):
            self.assertEqual(self.session().get(self.url(page)).status_code, 404, page)
