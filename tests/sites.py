"""Two Plone sites sharing one queue database, and a third without the add-on (not a test module).

``/plone`` and ``/plone2`` both have collective.zasync installed, so their jobs
share the queue root of the one test database; ``/plain`` has Plone only.
Users of ``/plone``: one per role of the permission matrix (USERS); of
``/plone2``: its own Manager, ``manager2``. ``admin`` (SITE_OWNER_NAME) is the
Manager of the Zope root.
"""

from Acquisition import aq_parent
from collective.zasync.testing import WorkerFunctionalTesting
from collective.zasync.testing import ZASYNC_FIXTURE
from plone.app.testing import login
from plone.app.testing import PloneSandboxLayer
from plone.app.testing import SITE_OWNER_NAME
from plone.app.testing import SITE_OWNER_PASSWORD
from plone.testing.zope import WSGI_SERVER_FIXTURE
from Products.CMFPlone.factory import addPloneSite
from zope.component.hooks import setSite

import requests


PASSWORD = "secret-Pw-123"
# /plone's users: name -> global roles
USERS = {
    "member": ["Member"],
    "editor": ["Member", "Editor"],
    "siteadmin": ["Member", "Site Administrator"],
    "manager": ["Member", "Manager"],
}
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
