"""Who may see and change what, over real HTTP, on two sites sharing one queue database.

The permission matrix (Anonymous, Member, Editor, Site Administrator, the
Manager of another site, Manager) over every view and service; CSRF rules of
the REST write services; the site root's jobs; REST services only where the
add-on is installed. The settings and each site's own jobs: tests/web/test_sites_http.py.
"""

from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.core.job import state_name
from plone import api
from plone.app.testing import login
from tests.support import sample_jobs
from tests.support.sites import HttpTestCase
from tests.support.sites import OTHER_MANAGER
from zope.component.hooks import setSite

import lxml.html
import transaction


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
        self.assertEqual(state_name(failed), "failed")
        self.assertEqual(state_name(pending), "pending")

    def test_a_bad_token_is_refused(self):
        failed = self.failed_job()
        response = self.session("manager").post(
            self.url("++api++/@zasync-jobs/%s/retry" % failed.id), headers={"X-CSRF-TOKEN": "0" * 40})
        self.assertEqual(response.status_code, 403, response.text[:300])
        transaction.begin()
        self.assertEqual(state_name(failed), "failed")

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
        self.assertEqual(state_name(pending), "failed")

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
        self.assertEqual(state_name(pending), "failed")

    def test_delete_is_not_a_form_method(self):
        # (A form sends GET or POST only; another method from another origin needs CORS.)
        failed = self.failed_job()
        response = self.session("manager", json=True).delete(self.url("@zasync-jobs/%s" % failed.id))
        self.assertEqual(response.status_code, 204, response.text[:300])


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
