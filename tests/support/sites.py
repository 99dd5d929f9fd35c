"""Two Plone sites sharing one queue database, and a third without the add-on (not a test module).

``HttpTestCase``: the base of the tests over real HTTP on them.

``/plone`` and ``/plone2`` both have collective.zasync installed, so their jobs
share the queue root of the one test database; ``/plain`` has Plone only.
Users of ``/plone``: one per role of the permission matrix (USERS); of
``/plone2``: its own Manager, ``manager2``. ``admin`` (SITE_OWNER_NAME) is the
Manager of the Zope root.
"""

from Acquisition import aq_parent
from collective.zasync.interfaces import IAsyncService
from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.testing import WorkerFunctionalTesting
from collective.zasync.testing import ZASYNC_FIXTURE
from plone.app.testing import login
from plone.app.testing import logout
from plone.app.testing import PloneSandboxLayer
from plone.app.testing import SITE_OWNER_NAME
from plone.app.testing import SITE_OWNER_PASSWORD
from plone.protect.authenticator import createToken
from plone.testing.zope import WSGI_SERVER_FIXTURE
from Products.CMFPlone.factory import addPloneSite
from tests.support import sample_jobs
from tests.support.panel import PASSWORD
from tests.support.panel import USERS  # /plone's users: name -> global roles
from zope.component import getUtility
from zope.component.hooks import setSite

import requests
import transaction
import unittest


OTHER_MANAGER = "manager2"  # the Manager of /plone2


def add_user(site, name, roles):
    site.portal_registration.addMember(name, PASSWORD, roles, properties={"email": name + "@example.org",
                                                                          "username": name})


class TwoSitesLayer(PloneSandboxLayer):
    defaultBases = (ZASYNC_FIXTURE,)

    def setUpPloneSite(self, portal):
        app = aq_parent(portal)
        login(app, SITE_OWNER_NAME)
        addPloneSite(app, "plone2", title="Second site", setup_content=False,
                     extension_ids=("plone.app.contenttypes:default", "collective.zasync:default"))
        addPloneSite(app, "plain", title="Without the add-on", setup_content=False,
                     extension_ids=("plone.app.contenttypes:default",))
        setSite(portal)
        for name, roles in USERS.items():
            add_user(portal, name, roles)
        setSite(app["plone2"])
        add_user(app["plone2"], OTHER_MANAGER, ["Member", "Manager"])
        setSite(portal)


TWO_SITES_FIXTURE = TwoSitesLayer()
TWO_SITES_FUNCTIONAL = WorkerFunctionalTesting(
    bases=(TWO_SITES_FIXTURE,), name="collective.zasync:TwoSitesFunctional")
TWO_SITES_ACCEPTANCE = WorkerFunctionalTesting(
    bases=(TWO_SITES_FIXTURE, WSGI_SERVER_FIXTURE), name="collective.zasync:TwoSitesAcceptance")


def http_session(user, json=False):
    """A requests session logged in (HTTP basic) as ``user``; "anonymous": not logged in."""
    session = requests.Session()
    if user == "owner":
        session.auth = (SITE_OWNER_NAME, SITE_OWNER_PASSWORD)
    elif user != "anonymous":
        session.auth = (user, PASSWORD)
    if json:  # Accept, and a JSON body (the REST write services refuse form posts)
        session.headers["Accept"] = session.headers["Content-Type"] = "application/json"
    return session


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
