"""The base of the in-process job tests: a site, a worker in the layer, a Manager logged in."""

from collective.zasync.interfaces import IAsyncService
from collective.zasync.testing import ZASYNC_FUNCTIONAL_TESTING
from plone.app.testing import login
from plone.app.testing import setRoles
from plone.app.testing import TEST_USER_ID
from plone.app.testing import TEST_USER_NAME
from zope.component import getUtility

import unittest


class WorkerTestCase(unittest.TestCase):
    layer = ZASYNC_FUNCTIONAL_TESTING

    def setUp(self):
        self.portal = self.layer["portal"]
        self.service = getUtility(IAsyncService)
        setRoles(self.portal, TEST_USER_ID, ["Manager"])
        login(self.portal, TEST_USER_NAME)
