"""Monitoring over real HTTP: @@zasync-metrics while jobs run, @@zasync-health, and the
settings in plone.restapi's @controlpanels (Volto's Site Setup)."""

from collective.zasync.client import admin
from collective.zasync.client import reading
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.interfaces import ACTIVE
from collective.zasync.core.retention import remove_old_jobs
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.worker.settings import WorkerSettings
from prometheus_client.parser import text_string_to_metric_families
from tests.support import sample_jobs
from tests.support.panel import PanelTestCase

import os
import transaction


TOKEN = "scraper-token-for-the-test"


def parse(text):
    """{(sample name, ((label, value), ...)): value} of a Prometheus text page."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


class TestMetrics(PanelTestCase):
    def setUp(self):
        super().setUp()
        os.environ["ZASYNC_METRICS_TOKEN"] = TOKEN  # the server runs in this process
        sample_jobs.gate.clear()

    def tearDown(self):
        sample_jobs.gate.set()
        del os.environ["ZASYNC_METRICS_TOKEN"]
        super().tearDown()

    def scrape(self, **headers):
        response = self.session("anonymous").get(self.url("@@zasync-metrics"), headers=headers)
        self.assertEqual(response.status_code, 200, response.text[:500])
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        return parse(response.text)

    def test_scrape_while_jobs_run_and_compare_with_the_queue(self):
        jobs = self.queue_jobs_in_every_state()  # "": 1 completed, 1 failed, 1 delayed; held: 1 pending
        admin.retry(jobs["failed"])  # its second attempt completes
        self.assertEqual(wait_for_result(jobs["failed"]), "succeeded on attempt 2")
        self.wait_filed(lambda queue: queue.completed_count() == 2)
        self.service.createQueue("reports")
        running = [self.service.queueJobInQueue("reports", (), sample_jobs.report_progress, self.portal)
                   for _ in range(2)]
        transaction.commit()
        wait_until(lambda: all(job.status == ACTIVE for job in running), "both jobs running")

        metrics = self.scrape(Authorization="Bearer " + TOKEN)
        transaction.begin()
        root = reading.queue_root(self.portal)
        for name in ("", "held", "reports"):  # the same numbers as the control panel's
            for state, count in reading.queue_counts(root, root.queues[name]).items():
                self.assertEqual(metrics[("zasync_jobs", (("queue", name), ("state", state)))], count,
                                 (name, state))
        self.assertEqual(metrics[("zasync_jobs", (("queue", ""), ("state", "completed")))], 2)
        self.assertEqual(metrics[("zasync_jobs", (("queue", ""), ("state", "delayed")))], 1)
        self.assertEqual(metrics[("zasync_jobs", (("queue", "held"), ("state", "pending")))], 1)
        self.assertEqual(metrics[("zasync_jobs", (("queue", "reports"), ("state", "active")))], 2)
        # counters: the failure stays counted after the retry; the retry is counted
        self.assertEqual(metrics[("zasync_jobs_completed_total", (("queue", ""),))], 2)
        self.assertEqual(metrics[("zasync_jobs_failed_total", (("queue", ""),))], 1)
        self.assertEqual(metrics[("zasync_jobs_retried_total", (("queue", ""),))], 1)
        # histograms of the finished jobs: both completed jobs of the default queue
        for name in ("zasync_job_duration_seconds", "zasync_job_pickup_latency_seconds"):
            self.assertEqual(metrics[(name + "_count", (("queue", ""),))], 2)
            self.assertEqual(metrics[(name + "_bucket", (("le", "+Inf"), ("queue", "")))], 2)
            self.assertEqual(metrics[(name + "_count", (("queue", "reports"),))], 0)
        # the held job is due and waits; nothing else does
        held_wait = metrics[("zasync_oldest_pending_job_age_seconds", (("queue", "held"),))]
        self.assertGreater(held_wait, 0)
        self.assertLessEqual(held_wait, (reading.utcnow() - jobs["pending"].queued).total_seconds())
        self.assertEqual(metrics[("zasync_oldest_pending_job_age_seconds", (("queue", "reports"),))], 0)
        # the layer's worker: alive, both threads busy
        worker = (("host", root.workers[self.layer.worker_uuid].host),
                  ("pid", str(os.getpid())), ("worker", self.layer.worker_uuid))
        self.assertEqual(metrics[("zasync_workers", (("state", "alive"),))], 1)
        self.assertEqual(metrics[("zasync_workers", (("state", "dead"),))], 0)
        self.assertEqual(metrics[("zasync_worker_threads", worker)], 2)
        self.assertEqual(metrics[("zasync_worker_busy_threads", worker)], 2)

        sample_jobs.gate.set()
        for job in running:
            wait_for_result(job)
        self.wait_filed(lambda queue: queue.completed_count() == 2, "reports")
        metrics = self.scrape(Authorization="Bearer " + TOKEN)
        self.assertEqual(metrics[("zasync_jobs_completed_total", (("queue", "reports"),))], 2)
        self.assertEqual(metrics[("zasync_worker_busy_threads", worker)], 0)
        self.assertEqual(metrics[("zasync_job_duration_seconds_count", (("queue", "reports"),))], 2)

        # the retention removes finished jobs: they are no longer kept, still counted
        transaction.begin()
        root = reading.queue_root(self.portal)
        kept, root.retention_days = root.retention_days, 0
        self.assertEqual(remove_old_jobs(root, 0), 4)
        root.retention_days = kept
        transaction.commit()
        metrics = self.scrape(Authorization="Bearer " + TOKEN)
        for name, completed in (("", 2), ("reports", 2)):
            self.assertEqual(metrics[("zasync_jobs", (("queue", name), ("state", "completed")))], 0)
            self.assertEqual(metrics[("zasync_jobs_completed_total", (("queue", name),))], completed)
        self.assertEqual(metrics[("zasync_jobs_failed_total", (("queue", ""),))], 1)

    def test_who_may_scrape(self):
        url = self.url("@@zasync-metrics")
        for user in REFUSED_USERS:
            response = self.session(user).get(url)
            self.assertEqual(response.status_code, 401, user)
            self.assertNotIn("zasync_jobs", response.text)
        wrong = self.session("anonymous").get(url, headers={"Authorization": "Bearer wrong"})
        self.assertEqual(wrong.status_code, 401)
        self.assertEqual(wrong.headers["WWW-Authenticate"], 'Bearer realm="zasync-metrics"')
        manager = self.session("manager").get(url)
        self.assertEqual(manager.status_code, 200)
        self.assertIn("# TYPE zasync_jobs gauge", manager.text)
        del os.environ["ZASYNC_METRICS_TOKEN"]  # no token set: a bearer gets nothing
        try:
            response = self.session("anonymous").get(url, headers={"Authorization": "Bearer "})
            self.assertEqual(response.status_code, 401)
        finally:
            os.environ["ZASYNC_METRICS_TOKEN"] = TOKEN


REFUSED_USERS = ("anonymous", "member", "editor", "siteadmin")


class TestHealth(PanelTestCase):
    def health(self):
        response = self.session("anonymous").get(self.url("@@zasync-health"))
        self.assertEqual(response.headers["Content-Type"], "application/json")
        report = response.json()
        # nothing about jobs, users or content
        self.assertEqual(sorted(report), ["max_wait_seconds", "oldest_due_job_waited_seconds",
                                          "problems", "status", "workers_alive"])
        return response.status_code, report

    def test_healthy_then_a_job_waits_too_long_then_no_worker(self):
        self.assertEqual(self.health(), (200, {
            "status": "ok", "workers_alive": 1, "oldest_due_job_waited_seconds": 0.0,
            "max_wait_seconds": 300, "problems": []}))
        self.portal.portal_registry["collective.zasync.health_max_wait"] = 1
        held = self.service.createQueue("held")
        held.quotas["none"] = 0  # its job stays due and waiting
        self.service.queueJobInQueue("held", ("none",), sample_jobs.add, self.portal, 1)
        transaction.commit()
        wait_until(lambda: self.health()[0] == 503, "the health check to fail")
        status, report = self.health()
        self.assertEqual(report["status"], "failing")
        self.assertEqual(report["workers_alive"], 1)
        self.assertGreaterEqual(report["oldest_due_job_waited_seconds"], 1)
        self.assertIn("a due job has waited", report["problems"][0])

        self.portal.portal_registry["collective.zasync.health_max_wait"] = 3600
        transaction.commit()
        self.assertEqual(self.health()[0], 200)
        self.layer["zasync_dispatcher"].stop()  # it unregisters: no worker left
        try:
            status, report = self.health()
            self.assertEqual(status, 503)
            self.assertEqual((report["workers_alive"], report["problems"]), (0, ["no worker is alive"]))
        finally:
            settings = WorkerSettings(threads=2, poll_interval=0.5, ping_interval=1.0,
                                      death_interval=30.0, max_retries=3, stop_timeout=10.0)
            self.layer["zasync_dispatcher"] = Dispatcher(self.layer["zodbDB"], self.layer.worker_uuid,
                                                         settings)
            self.layer["zasync_dispatcher"].start()


    def test_sites_of_profile_1002_get_the_setting_by_the_upgrade_step(self):
        registry, setup = self.portal.portal_registry, self.portal.portal_setup
        del registry.records["collective.zasync.health_max_wait"]
        setup.setLastVersionForProfile("collective.zasync:default", "1002")
        self.assertEqual(self.health()[1]["max_wait_seconds"], 300)  # no record: the default
        upgrades = setup.listUpgrades("collective.zasync:default")
        self.assertEqual([step["title"] for step in upgrades][0], "collective.zasync 1.0: the health check setting")
        setup.upgradeProfile("collective.zasync:default")
        self.assertEqual(registry["collective.zasync.health_max_wait"], 300)
        transaction.commit()
        self.assertEqual(self.get_page("@@zasync-settings").xpath(
            '//input[@name="form.widgets.health_max_wait"]/@value'), ["300"])


class TestVoltoControlpanel(PanelTestCase):
    def test_listed_read_and_edited_through_controlpanels(self):
        session = self.session("manager", json=True)
        panels = session.get(self.url("@controlpanels")).json()
        [ours] = [panel for panel in panels if panel["@id"].endswith("/@controlpanels/zasync-settings")]
        self.assertEqual((ours["title"], ours["group"]), ("Background jobs", "Advanced"))

        panel = session.get(self.url("@controlpanels/zasync-settings")).json()
        self.assertEqual(
            sorted(panel["schema"]["properties"]),
            ["default_queue_concurrency", "health_max_wait", "max_retries", "retention_days"])
        self.assertEqual(panel["data"]["default_queue_concurrency"], 1)
        response = self.session("owner", json=True).patch(  # (the whole database's: the Zope root's Manager)
            self.url("@controlpanels/zasync-settings"), json={"default_queue_concurrency": 3})
        self.assertEqual(response.status_code, 204, response.text)
        transaction.begin()
        self.assertEqual(self.portal.portal_registry["collective.zasync.default_queue_concurrency"], 3)
        # copied to the queue database, where the workers read it
        self.assertEqual(reading.queue_root(self.portal).queues[""].concurrency, 3)
        self.assertEqual(self.session("member", json=True).get(
            self.url("@controlpanels/zasync-settings")).status_code, 401)
