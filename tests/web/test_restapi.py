"""plone.restapi services @zasync-queues and @zasync-jobs, over real HTTP,
and who may see and act, in the control panel and in the API."""

from collective.zasync import interfaces
from tests.support import sample_jobs
from collective.zasync.testing import wait_for_result
from tests.support.panel import PanelTestCase
from tests.support.panel import REFUSED

import transaction


class TestQueuesAndJobs(PanelTestCase):
    def api(self, method, path, **kwargs):
        response = self.session(json=True).request(method, self.url(path), **kwargs)
        return response.status_code, (response.json() if response.content else None)

    def test_queues_with_counts_recurring_jobs_and_workers(self):
        self.queue_jobs_in_every_state()
        recurring = self.service.queueRecurringJob(sample_jobs.add, self.portal, 3600, 1)
        transaction.commit()
        self.wait_filed(lambda queue: len(queue.recurring) == 1)
        status, data = self.api("GET", "@zasync-queues")
        self.assertEqual(status, 200)
        queues = {queue["name"]: queue for queue in data["queues"]}
        self.assertEqual(queues[""]["counts"],
                         {"pending": 0, "delayed": 2, "active": 0, "failed": 1, "completed": 1})
        self.assertEqual(queues["held"]["counts"]["pending"], 1)
        self.assertEqual(queues[""]["jobs"]["failed"], self.url("@zasync-jobs?queue=&state=failed"))
        self.assertEqual([r["id"] for r in queues[""]["recurring"]], [recurring.recurrence.id])
        self.assertEqual(queues[""]["recurring"][0]["schedule"], recurring.recurrence.describe())
        [worker] = data["workers"]
        self.assertEqual(worker["uuid"], self.layer.worker_uuid)
        self.assertTrue(worker["alive"])
        self.assertEqual(worker["threads"], 2)
        self.assertIn("T", worker["last_ping"])  # ISO 8601

    def test_job_list_is_paged(self):
        for number in range(5):
            wait_for_result(self.service.queueJob(sample_jobs.add, self.portal, number))
        self.wait_filed(lambda queue: queue.completed_count() == 5)
        status, data = self.api("GET", "@zasync-jobs", params={"queue": "", "state": "completed", "b_size": 2})
        self.assertEqual(status, 200)
        self.assertEqual(data["items_total"], 5)
        self.assertEqual(len(data["items"]), 2)
        self.assertEqual([item["state"] for item in data["items"]], ["completed", "completed"])
        self.assertIn("next", data["batching"])
        self.assertNotIn("prev", data["batching"])
        item = data["items"][0]
        self.assertEqual(item["@id"], self.url("@zasync-jobs/%s" % item["id"]))
        self.assertEqual(item["description"], "tests.support.sample_jobs.add on /plone")
        self.assertEqual(item["user"], "test_user_1_")
        status, data = self.api("GET", "@zasync-jobs", params={"queue": "", "state": "completed", "b_start": 4,
                                                              "b_size": 2})
        self.assertEqual(len(data["items"]), 1)
        self.assertIn("prev", data["batching"])
        self.assertNotIn("next", data["batching"])

    def test_job_detail_with_traceback_and_progress(self):
        jobs = self.queue_jobs_in_every_state()
        status, data = self.api("GET", "@zasync-jobs/%s" % jobs["failed"].id)
        self.assertEqual(status, 200)
        self.assertEqual(data["state"], "failed")
        self.assertEqual(data["callable"], "tests.support.sample_jobs.fail_first_attempt")
        self.assertIn("Traceback (most recent call last)", data["traceback"])
        self.assertEqual(data["actions"], ["retry", "remove"])
        status, data = self.api("GET", "@zasync-jobs/%s" % jobs["completed"].id)
        self.assertEqual((data["result"], data["args"], data["traceback"]), ("42", ["20", "22"], None))
        sample_jobs.gate.clear()
        running = self.service.queueJob(sample_jobs.report_progress, self.portal)
        transaction.commit()
        try:
            for _ in range(200):
                status, data = self.api("GET", "@zasync-jobs/%s" % running.id)
                if data["progress"] == 50:  # (0 from its claim until the job reports)
                    break
            self.assertEqual((data["state"], data["progress"], data["progress_data"]),
                             ("active", 50, {"step": "half"}))
        finally:
            sample_jobs.gate.set()
        wait_for_result(running)

    def test_retry_cancel_and_delete(self):
        jobs = self.queue_jobs_in_every_state()
        status, data = self.api("POST", "@zasync-jobs/%s/retry" % jobs["failed"].id)
        self.assertEqual((status, data["state"]), (200, "pending"))
        self.assertEqual(wait_for_result(jobs["failed"]), "succeeded on attempt 2")
        status, data = self.api("POST", "@zasync-jobs/%s/cancel" % jobs["delayed"].id)
        self.assertEqual((status, data["state"]), (200, "failed"))
        self.assertIn("Cancelled", data["failure"])
        status, data = self.api("DELETE", "@zasync-jobs/%s" % jobs["completed"].id)
        self.assertEqual((status, data), (204, None))
        self.wait_filed(lambda queue: queue.completed_count() == 1)  # the retried one
        status, data = self.api("DELETE", "@zasync-jobs", params={"queue": "", "state": "completed"})
        self.assertEqual((status, data), (200, {"queue": "", "state": "completed", "removed": 1}))
        transaction.begin()
        queue = self.service.getQueues()[""]
        self.assertIsNone(queue.get(jobs["completed"].id))
        self.assertIsNone(queue.get(jobs["failed"].id))
        self.assertEqual(queue.failed_count(), 1)  # the cancelled one

    def test_errors(self):
        jobs = self.queue_jobs_in_every_state()
        for method, path, params, expected in (
            ("GET", "@zasync-jobs/no-such-job", None, 404),
            ("POST", "@zasync-jobs/no-such-job/retry", None, 404),
            ("DELETE", "@zasync-jobs/no-such-job", None, 404),
            ("POST", "@zasync-jobs/%s/retry" % jobs["completed"].id, None, 400),
            ("POST", "@zasync-jobs/%s/cancel" % jobs["failed"].id, None, 400),
            ("DELETE", "@zasync-jobs/%s" % jobs["delayed"].id, None, 400),
            ("GET", "@zasync-jobs", {"queue": "nope", "state": "failed"}, 400),
            ("GET", "@zasync-jobs", {"queue": "", "state": "nope"}, 400),
            ("DELETE", "@zasync-jobs", {"queue": "", "state": "pending"}, 400),
        ):
            status, data = self.api(method, path, params=params)
            self.assertEqual(status, expected, (method, path, params, data))
            self.assertIn("message", data["error"])
        status, data = self.api("POST", "@zasync-jobs/%s/retry" % jobs["completed"].id)
        self.assertIn("Only a failed job can be retried", data["error"]["message"])

    def test_jobs_cannot_be_created_from_json(self):
        self.queue_jobs_in_every_state()
        queue = self.service.getQueues()[""]
        before = (len(queue.jobs), len(queue))
        for path in ("@zasync-jobs", "@zasync-jobs/new", "@zasync-queues"):
            status, data = self.api("POST", path, json={
                "func": "tests.support.sample_jobs.create_document", "args": ["hacked"]})
            self.assertIn(status, (404, 405), (path, data))
        transaction.begin()
        self.assertEqual((len(queue.jobs), len(queue)), before)
        self.assertNotIn("hacked", self.portal.objectIds())


class TestSettingsOverREST(PanelTestCase):
    def test_the_default_queues_concurrency_through_the_registry_endpoint(self):
        response = self.session("owner", json=True).patch(  # (the whole database's: the Zope root's Manager)
            self.url("@registry"), json={"collective.zasync.default_queue_concurrency": 3})
        self.assertEqual(response.status_code, 204, response.text)
        transaction.begin()
        self.assertEqual(self.service.getQueues()[""].concurrency, 3, "copied where the workers read it")
        response = self.session(json=True).get(self.url("@registry/collective.zasync.default_queue_concurrency"))
        self.assertEqual(response.json(), 3)


class TestPermissions(PanelTestCase):
    """Only "Manage portal" (Managers) may see or act; everyone else is refused."""

    def reads(self, jobs):
        return [
            ("GET", "@@zasync-controlpanel", {}),
            ("GET", "@@zasync-controlpanel", {"queue": "", "state": "failed"}),
            ("GET", "@@zasync-job", {"id": jobs["failed"].id}),
            ("GET", "@@zasync-settings", {}),
            ("GET", "@zasync-queues", {}),
            ("GET", "@zasync-jobs", {"queue": "", "state": "failed"}),
            ("GET", "@zasync-jobs/%s" % jobs["failed"].id, {}),
        ]

    def writes(self, jobs, user):
        token = self.token(user) if user != "anonymous" else ""
        return [
            ("POST", "@@zasync-controlpanel", {"zasync.action": "retry", "job_id": jobs["failed"].id,
                                               "_authenticator": token}),
            ("POST", "@@zasync-controlpanel", {"zasync.action": "cancel", "job_id": jobs["delayed"].id,
                                               "_authenticator": token}),
            ("POST", "@@zasync-controlpanel", {"zasync.action": "remove-all", "queue": "",
                                               "state": "completed", "_authenticator": token}),
            ("POST", "@@zasync-settings", {"form.widgets.retention_days": "0", "form.widgets.max_retries": "0",
                                           "form.widgets.default_queue_concurrency": "1",
                                           "form.buttons.save": "Save", "_authenticator": token}),
            ("POST", "@zasync-jobs/%s/retry" % jobs["failed"].id, None),
            ("POST", "@zasync-jobs/%s/cancel" % jobs["delayed"].id, None),
            ("DELETE", "@zasync-jobs/%s" % jobs["completed"].id, None),
            ("DELETE", "@zasync-jobs", {"queue": "", "state": "failed"}),
        ]

    def request(self, user, method, path, form):
        json = path.startswith("@zasync")
        session = self.session(user, json=json)
        if method == "POST" and not json:
            return session.post(self.url(path), data=form, allow_redirects=False)
        return session.request(method, self.url(path), params=form, allow_redirects=False)

    def assert_refused(self, response, user, what):
        # Anonymous is asked to log in (401, or a redirect to the login form);
        # a logged-in user without the permission gets 401/403 or the login form.
        refused = response.status_code in (401, 403) or (
            response.status_code == 302 and "login" in response.headers.get("Location", "")
        )
        self.assertTrue(refused, "%s may %s: %s %s" % (user, what, response.status_code, response.text[:300]))

    def test_everyone_below_manage_portal_is_refused(self):
        jobs = self.queue_jobs_in_every_state()
        for user in REFUSED:
            for method, path, form in self.reads(jobs) + self.writes(jobs, user):
                self.assert_refused(self.request(user, method, path, form), user, "%s %s" % (method, path))
        transaction.begin()
        queue = self.service.getQueues()[""]
        self.assertEqual((queue.completed_count(), queue.failed_count()), (1, 1), "nothing changed")
        self.assertEqual(jobs["delayed"].status, interfaces.PENDING)
        self.assertEqual(self.portal.portal_registry["collective.zasync.retention_days"], 7)
        site_setup = self.session("siteadmin").get(self.url("@@overview-controlpanel"))
        self.assertNotIn("@@zasync-controlpanel", site_setup.text, "configlet shown to a Site Administrator")

    def test_manager_may_see_and_act(self):
        jobs = self.queue_jobs_in_every_state()
        for method, path, form in self.reads(jobs):
            response = self.request("manager", method, path, form)
            self.assertEqual(response.status_code, 200, "%s %s" % (method, path))
        statuses = [self.request("manager", method, path, form).status_code
                    for method, path, form in self.writes(jobs, "manager")]
        # the panel and the settings form redirect after they acted
        self.assertEqual(statuses[:4], [302, 302, 302, 302])
        # The API acts on what the panel left: the failed job was retried (so it
        # cannot be retried again; if it completed before remove-all, it is gone),
        # the delayed one cancelled, the completed one removed; the cancelled one
        # is failed and removed by the last DELETE.
        self.assertIn(statuses[4], (400, 404))
        self.assertEqual(statuses[5:], [400, 404, 200])
        transaction.begin()
        # the site's setting changed; the retention is the whole database's (the Zope root's Manager)
        records = self.portal.portal_registry.records  # (not the registry's cache of this request)
        self.assertEqual(records["collective.zasync.max_retries"].value, 0)
        self.assertEqual(records["collective.zasync.retention_days"].value, 7)
