"""Who may see and change what, over real HTTP, on two sites sharing one queue database.

The permission matrix (Anonymous, Member, Editor, Site Administrator, the
Manager of another site, Manager) over every view and service; CSRF rules of
the REST write services; settings that need "Manage portal" (or the Zope
root's Manager, for those of the whole queue database); REST services only
where the add-on is installed.
"""

from collective.zasync import actions
from collective.zasync.interfaces import IAsyncService
from collective.zasync.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone import api
from plone.app.testing import login
from plone.app.testing import logout
from plone.app.testing import SITE_OWNER_NAME
from plone.protect.authenticator import createToken
from tests import sample_jobs
from tests.sites import http_session
from tests.sites import OTHER_MANAGER
from tests.sites import TWO_SITES_ACCEPTANCE
from zope.component import getUtility
from zope.component.hooks import setSite

import lxml.html
import transaction
import unittest


class HttpTestCase(unittest.TestCase):
    layer = TWO_SITES_ACCEPTANCE

    def setUp(self):
        self.app = self.layer["app"]
        self.portal = self.layer["portal"]
        self.other = self.app["plone2"]
        self.service = getUtility(IAsyncService)
        self.root_url = "http://%s:%s" % (self.layer["host"], self.layer["port"])
        self.sessions = []
        login(self.app, SITE_OWNER_NAME)
        held = self.service.createQueue("held")  # a quota of 0 keeps its jobs pending
        held.quotas["none"] = 0
        transaction.commit()

    def tearDown(self):
        for session in self.sessions:
            session.close()
        setSite(self.portal)

    def session(self, user, json=False):
        session = http_session(user, json=json)
        self.sessions.append(session)
        return session

    def url(self, path, site="plone"):
        return "%s/%s/%s" % (self.root_url, site, path)

    def token(self, user, site=None):
        """The plone.protect token ``user`` gets in the pages of ``site``."""
        site = site or self.portal
        setSite(site)  # (its key ring)
        login(self.app if user == SITE_OWNER_NAME else site, user)
        try:
            return createToken()
        finally:
            logout()
            login(self.app, SITE_OWNER_NAME)
            setSite(self.portal)

    def queue_as(self, site, user, func, *args, held=False, **kwargs):
        setSite(site)
        login(self.app if user == SITE_OWNER_NAME else site, user)
        try:
            if held:
                return self.service.queueJobInQueue("held", ("none",), func, site, *args, **kwargs)
            return self.service.queueJob(func, site, *args, **kwargs)
        finally:
            setSite(self.portal)
            login(self.app, SITE_OWNER_NAME)

    def setting(self, name, site=None):
        """A setting of ``site`` as committed (not the registry's cache of the test's request)."""
        transaction.begin()
        return (site or self.portal).portal_registry.records["collective.zasync." + name].value

    def failed_job(self, site=None, user="manager"):
        """A failed job of ``user`` in ``site``, filed."""
        site = site or self.portal
        job = self.queue_as(site, user, sample_jobs.fail, "boom")
        wait_for_result(job)
        wait_until(lambda: job.id in get_queue_root(self.portal._p_jar).queues[""].jobs, "the job filed")
        return job


class TestCrossSiteRequestForgery(HttpTestCase):
    """A cross-site form can post urlencoded data to ++api++, with the victim's cookie (or
    cached basic auth): the REST write services refuse what is not JSON or carries no token."""

    def test_a_form_post_through_api_is_refused(self):
        failed = self.failed_job()
        pending = self.queue_as(self.portal, "member", sample_jobs.add, 1, held=True)
        transaction.commit()
        manager, member = self.session("manager"), self.session("member")
        for session, path in ((manager, "++api++/@zasync-jobs/%s/retry" % failed.id),
                              (manager, "++api++/@zasync-jobs/%s/cancel" % pending.id),
                              (member, "++api++/@zasync-my-jobs/%s/cancel" % pending.id)):
            response = session.post(self.url(path), data={"x": "1"}, allow_redirects=False)
            self.assertEqual(response.status_code, 403, (path, response.text[:300]))
            self.assertIn("application/json", response.text)
        transaction.begin()
        self.assertEqual(actions.state_of(failed), "failed")
        self.assertEqual(actions.state_of(pending), "pending")

    def test_a_bad_token_is_refused(self):
        failed = self.failed_job()
        response = self.session("manager").post(
            self.url("++api++/@zasync-jobs/%s/retry" % failed.id), headers={"X-CSRF-TOKEN": "0" * 40})
        self.assertEqual(response.status_code, 403, response.text[:300])
        transaction.begin()
        self.assertEqual(actions.state_of(failed), "failed")

    def test_a_json_body_or_a_token_is_accepted(self):
        failed = self.failed_job()
        response = self.session("manager").post(
            self.url("++api++/@zasync-jobs/%s/retry" % failed.id), json={})
        self.assertEqual(response.status_code, 200, response.text[:300])
        wait_for_result(failed)
        pending = self.queue_as(self.portal, "member", sample_jobs.add, 1, held=True)
        transaction.commit()
        response = self.session("member").post(
            self.url("++api++/@zasync-my-jobs/%s/cancel" % pending.id),
            headers={"X-CSRF-TOKEN": self.token("member")})
        self.assertEqual(response.status_code, 200, response.text[:300])
        transaction.begin()
        self.assertEqual(actions.state_of(pending), "failed")

    def test_volto_with_a_jwt_and_a_json_body(self):
        """Volto logs in with @login and sends its token in the Authorization header."""
        pending = self.queue_as(self.portal, "member", sample_jobs.add, 1, held=True)
        transaction.commit()
        anonymous = self.session("anonymous", json=True)
        response = anonymous.post(self.url("++api++/@login"), json={"login": "member",
                                                                    "password": "secret-Pw-123"})
        self.assertEqual(response.status_code, 200, response.text[:300])
        anonymous.headers["Authorization"] = "Bearer " + response.json()["token"]
        response = anonymous.get(self.url("++api++/@zasync-my-jobs"))
        self.assertEqual([item["id"] for item in response.json()["items"]], [pending.id])
        response = anonymous.post(self.url("++api++/@zasync-my-jobs/%s/cancel" % pending.id), json={})
        self.assertEqual(response.status_code, 200, response.text[:300])
        transaction.begin()
        self.assertEqual(actions.state_of(pending), "failed")

    def test_delete_is_not_a_form_method(self):
        # (A form sends GET or POST only; another method from another origin needs CORS.)
        failed = self.failed_job()
        response = self.session("manager", json=True).delete(self.url("@zasync-jobs/%s" % failed.id))
        self.assertEqual(response.status_code, 204, response.text[:300])


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


class TestOnlyWhereInstalled(HttpTestCase):
    def test_no_service_nor_panel_on_a_site_without_the_add_on(self):
        session = self.session("owner", json=True)
        for path in ("@zasync-queues", "@zasync-jobs?queue=&state=failed", "@zasync-my-jobs",
                     "@zasync-content-jobs", "@@zasync-controlpanel", "@@zasync-my-jobs",
                     "@@zasync-metrics", "@controlpanels/zasync-settings"):
            self.assertEqual(session.get(self.url(path, "plain")).status_code, 404, path)
        panels = session.get(self.url("@controlpanels", "plain")).json()
        self.assertFalse([panel for panel in panels if "zasync" in panel["@id"]])
        self.assertEqual(session.get(self.url("@zasync-queues", "plone2")).status_code, 200)


def refused(response):
    """True if the answer refuses: 401/403/404, or a redirect to the login form."""
    return response.status_code in (401, 403, 404) or (
        response.status_code == 302 and "login" in response.headers.get("Location", ""))


class TestPermissionMatrix(HttpTestCase):
    """Each view, service and action of /plone, for each kind of user. ``manager2`` is the
    Manager of /plone2: /plone does not know them (their own site's services: TestSitesApart)."""

    USERS = ("anonymous", "member", "editor", "siteadmin", OTHER_MANAGER, "manager")
    MANAGER = {"manager"}
    LOGGED_IN = {"member", "editor", "siteadmin", "manager"}
    MODIFY = {"editor", "siteadmin", "manager"}  # Modify portal content on the item

    def setUp(self):
        super().setUp()
        self.failed = self.failed_job()
        self.pending = self.queue_as(self.portal, "member", sample_jobs.add, 1, held=True)
        self.later = self.queue_as(self.portal, "manager", sample_jobs.add, 1, held=True)
        self.queue_as(self.portal, "manager", sample_jobs.add, 2)  # (the site root's jobs)
        setSite(self.portal)
        self.doc = api.content.create(self.portal, "Document", id="doc", title="Doc")
        self.queue_as(self.portal, "manager", sample_jobs.add, 3)
        transaction.commit()

    def request(self, user, method, path, data=None):
        session = self.session(user, json=path.startswith(("@zasync", "@controlpanels", "doc/@zasync")))
        if method == "POST" and path.startswith("@@"):  # a classic form, with the user's token
            data = dict(data, _authenticator=self.token(user) if user in self.LOGGED_IN else "")
            return session.post(self.url(path), data=data, allow_redirects=False)
        if method in ("POST", "PATCH"):
            return session.request(method, self.url(path), json=data or {}, allow_redirects=False)
        return session.request(method, self.url(path), allow_redirects=False)

    def check(self, method, path, allowed, data=None):
        """Those not in ``allowed`` are refused (first), then those in it are answered."""
        for user in sorted(self.USERS, key=lambda user: user in allowed):
            response = self.request(user, method, path, data)
            self.assertEqual(not refused(response), user in allowed,
                             "%s %s %s: %s %s" % (user, method, path, response.status_code,
                                                   response.text[:200]))

    def test_reading(self):
        everyone = set(self.USERS)
        for path, allowed in (
            ("@@zasync-controlpanel", self.MANAGER),
            ("@@zasync-controlpanel?queue=&state=failed", self.MANAGER),
            ("@@zasync-job?id=%s" % self.failed.id, self.MANAGER),
            ("@@zasync-settings", self.MANAGER),
            ("@zasync-queues", self.MANAGER),
            ("@zasync-jobs?queue=&state=failed", self.MANAGER),
            ("@zasync-jobs/%s" % self.failed.id, self.MANAGER),
            ("@controlpanels/zasync-settings", {"siteadmin", "manager"}),  # reading them is plone.restapi's
            ("@@zasync-metrics", self.MANAGER),
            ("@@zasync-health", everyone),
            ("@@zasync-my-jobs", self.LOGGED_IN),
            ("@zasync-my-jobs", self.LOGGED_IN),
            ("@@zasync-jobs", self.MODIFY),  # the site root's: each their own (TestSiteRootJobs)
            ("doc/@@zasync-jobs", self.MODIFY),
            ("doc/@zasync-content-jobs", self.MODIFY),
        ):
            with self.subTest(path=path):
                self.check("GET", path, allowed)

    def test_changing(self):
        self.check("PATCH", "@controlpanels/zasync-settings", self.MANAGER, {"max_retries": 4})
        self.check("POST", "@zasync-my-jobs/%s/cancel" % self.pending.id, {"member"})
        self.check("POST", "@zasync-jobs/%s/retry" % self.failed.id, self.MANAGER)
        self.check("POST", "@zasync-jobs/%s/cancel" % self.later.id, self.MANAGER)
        self.check("DELETE", "@zasync-jobs/%s" % self.pending.id, self.MANAGER)
        self.check("POST", "@@zasync-controlpanel", self.MANAGER,
                   {"zasync.action": "remove-all", "queue": "", "state": "completed"})


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
        wait_until(lambda: queue.completed_count() == 2 and queue.failed_count() == 2, "the jobs filed")

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
        self.assertEqual(actions.state_of(theirs["failed"]), "failed")
        self.assertEqual(actions.state_of(theirs["pending"]), "pending")
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


class TestSiteRootJobs(HttpTestCase):
    """The site root's "Background jobs" would list every job queued on the site (Managers',
    recurring ones) to whoever may modify the site root: they see their own there."""

    def test_own_jobs_unless_manage_portal(self):
        managers = self.queue_as(self.portal, "manager", sample_jobs.add, 1, held=True)
        editors = self.queue_as(self.portal, "editor", sample_jobs.add, 2, held=True)
        transaction.commit()
        wait_until(lambda: {managers.id, editors.id} <= set(self.service.getQueues()["held"].jobs),
                   "the jobs filed")
        for user, expected in (("editor", [editors.id]), ("siteadmin", []),
                               ("manager", [editors.id, managers.id])):
            page = lxml.html.fromstring(self.session(user).get(self.url("@@zasync-jobs")).text)
            self.assertEqual([row.get("data-job-id") for row in page.xpath("//tr[@data-job-id]")],
                             expected, user)
            data = self.session(user, json=True).get(self.url("@zasync-content-jobs")).json()
            self.assertEqual([item["id"] for item in data["items"]], expected, user)
