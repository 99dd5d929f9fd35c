"""Shared set-up of the control panel, REST and browser tests (not a test module).

The site is served over real HTTP by ZASYNC_ACCEPTANCE_TESTING, a worker runs
in the test process; requests log in with HTTP basic auth as one of USERS.
"""

from tests.support import sample_jobs
from collective.zasync.interfaces import IAsyncService
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import ZASYNC_ACCEPTANCE_TESTING
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone import api
from plone.app.testing import login
from plone.app.testing import logout
from plone.app.testing import setRoles
from plone.app.testing import SITE_OWNER_NAME
from plone.app.testing import SITE_OWNER_PASSWORD
from plone.app.testing import TEST_USER_ID
from plone.protect.authenticator import createToken
from zope.component import getUtility

import lxml.html
import requests
import time
import transaction
import unittest


PASSWORD = "secret-Pw-123"
# Who must be refused ("Manage portal" is for Managers only) and who may act.
USERS = {
    "member": ["Member"],
    "editor": ["Member", "Editor"],
    "siteadmin": ["Member", "Site Administrator"],
    "manager": ["Member", "Manager"],
}
REFUSED = ("anonymous", "member", "editor", "siteadmin")


class PanelTestCase(unittest.TestCase):
    layer = ZASYNC_ACCEPTANCE_TESTING

    def setUp(self):
        self.portal = self.layer["portal"]
        self.service = getUtility(IAsyncService)
        self.site_url = "http://%s:%s/plone" % (self.layer["host"], self.layer["port"])
        setRoles(self.portal, TEST_USER_ID, ["Manager"])
        for name, roles in USERS.items():
            api.user.create(email="%s@example.org" % name, username=name, password=PASSWORD, roles=roles)
        transaction.commit()
        self.sessions = []

    def tearDown(self):
        for session in self.sessions:
            session.close()

    # -- HTTP ------------------------------------------------------------------

    def session(self, user="manager", json=False):
        """A requests session logged in as ``user`` ("anonymous": not logged in)."""
        session = requests.Session()
        if user == "owner":
            session.auth = (SITE_OWNER_NAME, SITE_OWNER_PASSWORD)
        elif user != "anonymous":
            session.auth = (user, PASSWORD)
        if json:  # (a JSON body: the REST write services refuse form posts)
            session.headers["Accept"] = session.headers["Content-Type"] = "application/json"
        self.sessions.append(session)
        return session

    def url(self, path):
        return "%s/%s" % (self.site_url, path)

    def token(self, user="manager"):
        """The plone.protect authenticator ``user`` gets in their pages.

        Read from a page when the user may see it, else made as Plone makes it.
        (The browser test posts the panel's own forms.)
        """
        if user in ("manager", "owner"):
            page = self.get_page("@@zasync-settings", user)
            return page.xpath('//input[@name="_authenticator"]/@value')[0]
        login(self.portal, user)
        try:
            return createToken()
        finally:
            logout()

    def html(self, response):
        self.assertEqual(response.status_code, 200, response.text[:2000])
        return lxml.html.fromstring(response.text)

    def get_page(self, path, user="manager", **params):
        return self.html(self.session(user).get(self.url(path), params=params))

    def post_action(self, user="manager", token=True, **form):
        """POST an action to the panel; return the response (redirects not followed)."""
        if token:
            form["_authenticator"] = self.token(user) if token is True else token
        return self.session(user).post(self.url("@@zasync-controlpanel"), data=form, allow_redirects=False)

    # -- jobs in every state ----------------------------------------------------

    def queue_jobs_in_every_state(self):
        """A completed, a failed, a delayed and a pending (held) job; return them."""
        jobs = {
            "completed": self.service.queueJob(sample_jobs.add, self.portal, 20, 22),
            "failed": self.service.queueJob(sample_jobs.fail_first_attempt, self.portal),
            "delayed": self.service.queueJobWithDelay(
                None, datetime.now(timezone.utc) + timedelta(days=1), sample_jobs.add, self.portal, 1),
        }
        # a quota of 0 holds its jobs: pending for good
        held = self.service.createQueue("held")
        held.quotas["none"] = 0
        jobs["pending"] = self.service.queueJobInQueue("held", ("none",), sample_jobs.add, self.portal, 2)
        wait_for_result(jobs["completed"])
        wait_for_result(jobs["failed"])
        self.wait_filed(lambda queue: queue.completed_count() + queue.failed_count() == 2)
        return jobs

    def wait_filed(self, condition, queue_name="", seconds=10):
        """Wait until the worker's dispatcher filed what ``condition(queue)`` wants."""
        deadline = time.monotonic() + seconds
        while True:
            transaction.begin()
            if condition(self.service.getQueues()[queue_name]):
                return
            if time.monotonic() > deadline:
                raise AssertionError("The dispatcher did not file the jobs in %s s." % seconds)
            time.sleep(0.02)
