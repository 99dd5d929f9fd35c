"""Two sites sharing one queue database, over real HTTP: each site's Manager sees and steers
their site's jobs only; the settings need "Manage portal", and those of the whole queue
database the Zope root's Manager, whichever way they are changed."""

from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.core.job import state_name
from plone.app.testing import login
from plone.app.testing import SITE_OWNER_NAME
from tests.support import sample_jobs
from tests.support.sites import HttpTestCase
from tests.support.sites import OTHER_MANAGER
from zope.component.hooks import setSite

import lxml.html
import transaction


class TestSettings(HttpTestCase):
    """The settings need "Manage portal"; those of the whole queue database (retention, the
    default queue's concurrency) need the Zope root's Manager, whichever way they are changed."""

    def patch(self, user, path, data):
        return self.session(user, json=True).patch(self.url(path), json=data)

    def database(self):
        transaction.begin()
        root = get_queue_root(self.portal._p_jar)
        return root.retention_days, root.queues[""].concurrency

    def test_a_site_administrator_changes_no_setting(self):
        before = self.database()
        for data in ({"max_retries": 0}, {"retention_days": 0}, {"health_max_wait": 1}):
            response = self.patch("siteadmin", "@controlpanels/zasync-settings", data)
            self.assertIn(response.status_code, (401, 403), (data, response.text[:300]))
        self.assertEqual((self.setting("max_retries"), self.setting("retention_days"),
                          self.setting("health_max_wait")), (5, 7, 300))
        self.assertEqual(self.database(), before)

    def test_a_sites_manager_changes_its_sites_settings_only(self):
        response = self.patch("manager", "@controlpanels/zasync-settings", {"max_retries": 2})
        self.assertEqual(response.status_code, 204, response.text[:300])
        for path, data in (("@controlpanels/zasync-settings", {"retention_days": 0}),
                           ("@controlpanels/zasync-settings", {"default_queue_concurrency": 0}),
                           ("@registry", {"collective.zasync.retention_days": 0})):
            response = self.patch("manager", path, data)
            self.assertIn(response.status_code, (401, 403), (path, data, response.text[:300]))
            self.assertIn("Zope root", response.text)
        self.assertEqual(self.database(), (7, 1))
        self.assertEqual(self.setting("max_retries"), 2)

    def test_the_zope_roots_manager_changes_the_databases_settings_for_every_site(self):
        response = self.patch("owner", "@controlpanels/zasync-settings",
                              {"retention_days": 3, "default_queue_concurrency": 2})
        self.assertEqual(response.status_code, 204, response.text[:300])
        self.assertEqual(self.database(), (3, 2))
        for site in ("plone", "plone2"):  # each site's settings show what the workers apply
            data = self.session("owner", json=True).get(self.url("@controlpanels/zasync-settings", site)).json()
            self.assertEqual((data["data"]["retention_days"], data["data"]["default_queue_concurrency"]),
                             (3, 2), site)

    def test_the_classic_form_shows_them_to_a_sites_manager_without_changing_them(self):
        form = {"form.widgets.retention_days": "0", "form.widgets.max_retries": "0",
                "form.widgets.default_queue_concurrency": "0",
                "form.buttons.save": "Save", "_authenticator": self.token("manager")}
        page = self.session("manager").get(self.url("@@zasync-settings")).text
        self.assertFalse(lxml.html.fromstring(page).xpath('//input[@name="form.widgets.retention_days"]'))
        self.assertTrue("Zope root" in page, "the form says who changes the retention")
        response = self.session("manager").post(self.url("@@zasync-settings"), data=form)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(self.database(), (7, 1))
        self.assertEqual(self.setting("max_retries"), 0)
        form["_authenticator"] = self.token(SITE_OWNER_NAME)
        response = self.session("owner").post(self.url("@@zasync-settings"), data=form)
        self.assertEqual(self.database(), (0, None))

    def test_every_other_way_needs_the_zope_roots_manager_too(self):
        # registry.xml imported, plone.api, a script: the record's change is refused
        login(self.portal, "manager")
        from AccessControl import Unauthorized

        with self.assertRaisesRegex(Unauthorized, "Zope root"):
            self.portal.portal_registry["collective.zasync.retention_days"] = 0
        transaction.abort()
        self.portal.portal_registry["collective.zasync.retention_days"] = 7  # unchanged: allowed
        transaction.abort()
        login(self.app, SITE_OWNER_NAME)

    def test_installing_another_site_keeps_the_databases_settings(self):
        self.patch("owner", "@controlpanels/zasync-settings", {"retention_days": 3})
        transaction.begin()
        setSite(self.app["plain"])
        self.app["plain"].portal_setup.runAllImportStepsFromProfile("profile-collective.zasync:default")
        self.assertEqual(self.app["plain"].portal_registry.records["collective.zasync.retention_days"].value, 3)
        transaction.commit()
        self.assertEqual(self.database(), (3, 1))


class TestSitesApart(HttpTestCase):
    """Two sites share the queue database: the Manager of each sees and steers their site's jobs only."""

    def setUp(self):
        super().setUp()
        self.jobs = {}
        for site, manager in ((self.portal, "manager"), (self.other, OTHER_MANAGER)):
            name = site.getId()
            failed = self.failed_job(site, manager)
            done = self.queue_as(site, manager, sample_jobs.add, 1, 2)
            wait_for_result(done)
            pending = self.queue_as(site, manager, sample_jobs.add, 3, held=True)
            setSite(site)
            login(site, manager)
            recurring = self.service.queueRecurringJob(sample_jobs.add, site, 3600, 4)
            setSite(self.portal)
            login(self.app, SITE_OWNER_NAME)
            self.jobs[name] = {"failed": failed, "completed": done, "pending": pending, "recurring": recurring}
        transaction.commit()
        queue = self.service.getQueues()[""]
        # (a recurring job is listed once a worker filed it from its inbox: queue.recurring)
        wait_until(lambda: queue.completed_count() == 2 and queue.failed_count() == 2
                   and len(queue.recurring) == 2, "the jobs filed")

    def api(self, method, path, site="plone2", user=OTHER_MANAGER, **kwargs):
        response = self.session(user, json=True).request(method, self.url(path, site), **kwargs)
        return response.status_code, (response.json() if response.content else None)

    def test_each_sites_queues_and_lists(self):
        status, data = self.api("GET", "@zasync-queues")
        queues = {queue["name"]: queue for queue in data["queues"]}
        self.assertEqual(queues[""]["counts"],
                         {"pending": 0, "delayed": 1, "active": 0, "failed": 1, "completed": 1})
        self.assertEqual(queues["held"]["counts"]["pending"], 1)
        self.assertEqual([item["id"] for item in queues[""]["recurring"]],
                         [self.jobs["plone2"]["recurring"].recurrence.id])
        for state in ("failed", "completed"):
            status, data = self.api("GET", "@zasync-jobs", params={"queue": "", "state": state})
            self.assertEqual([item["id"] for item in data["items"]], [self.jobs["plone2"][state].id], state)
            self.assertEqual(data["items_total"], 1)
        status, data = self.api("GET", "@zasync-jobs", site="plone", user="manager",
                                params={"queue": "held", "state": "pending"})
        self.assertEqual([item["id"] for item in data["items"]], [self.jobs["plone"]["pending"].id])

    def test_another_sites_job_is_not_there(self):
        theirs = self.jobs["plone"]
        for method, path in (("GET", "@zasync-jobs/%s" % theirs["failed"].id),
                             ("POST", "@zasync-jobs/%s/retry" % theirs["failed"].id),
                             ("POST", "@zasync-jobs/%s/cancel" % theirs["pending"].id),
                             ("DELETE", "@zasync-jobs/%s" % theirs["completed"].id)):
            status, data = self.api(method, path)
            self.assertEqual(status, 404, (method, path, data))
        page = self.session(OTHER_MANAGER).get(self.url("@@zasync-job", "plone2"),
                                               params={"id": theirs["failed"].id})
        self.assertEqual(page.status_code, 404)
        token = self.token(OTHER_MANAGER, self.other)
        for form in ({"zasync.action": "retry", "job_id": theirs["failed"].id},
                     {"zasync.action": "cancel", "job_id": theirs["pending"].id},
                     {"zasync.action": "cancel-recurring", "recurrence_id": theirs["recurring"].recurrence.id}):
            self.session(OTHER_MANAGER).post(self.url("@@zasync-controlpanel", "plone2"),
                                             data=dict(form, _authenticator=token))
        transaction.begin()
        self.assertEqual(state_name(theirs["failed"]), "failed")
        self.assertEqual(state_name(theirs["pending"]), "pending")
        self.assertFalse(theirs["recurring"].recurrence.cancelled)

    def test_removing_all_failed_removes_the_sites_own(self):
        status, data = self.api("DELETE", "@zasync-jobs", params={"queue": "", "state": "failed"})
        self.assertEqual((status, data["removed"]), (200, 1))
        self.session(OTHER_MANAGER).post(self.url("@@zasync-controlpanel", "plone2"), data={
            "zasync.action": "remove-all", "queue": "", "state": "completed",
            "_authenticator": self.token(OTHER_MANAGER, self.other)})
        transaction.begin()
        queue = self.service.getQueues()[""]
        self.assertEqual([job.id for job in queue.failed.values()], [self.jobs["plone"]["failed"].id])
        self.assertEqual([job.id for job in queue.completed.values()], [self.jobs["plone"]["completed"].id])

    def test_metrics_of_the_site(self):
        response = self.session(OTHER_MANAGER).get(self.url("@@zasync-metrics", "plone2"))
        self.assertEqual(response.status_code, 200)
        lines = set(response.text.splitlines())
        self.assertTrue({'zasync_jobs{queue="",state="failed"} 1.0',
                         'zasync_jobs{queue="held",state="pending"} 1.0'} <= lines, "the site's own counts")
        # the totals that never go down count every site's jobs: the operator's token shows them
        self.assertFalse([line for line in lines if line.startswith("zasync_jobs_failed_total{")])

    def test_my_jobs_of_a_zope_root_user_in_each_site(self):
        here = self.queue_as(self.portal, SITE_OWNER_NAME, sample_jobs.add, 5, held=True)
        there = self.queue_as(self.other, SITE_OWNER_NAME, sample_jobs.add, 6, held=True)
        transaction.commit()
        for site, job in (("plone", here), ("plone2", there)):
            status, data = self.api("GET", "@zasync-my-jobs", site=site, user="owner")
            self.assertEqual([item["id"] for item in data["items"]], [job.id], site)
