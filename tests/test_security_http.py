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
        login(self.app if user == SITE_OWNER_NAME else site, user)
        try:
            return createToken()
        finally:
            logout()
            login(self.app, SITE_OWNER_NAME)

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
