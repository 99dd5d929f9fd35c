"""The profile installs and uninstalls cleanly; the public names exist."""

from collective.zasync.testing import ZASYNC_INTEGRATION_TESTING
from plone import api
from plone.app.testing import setRoles
from plone.app.testing import TEST_USER_ID
from plone.base.utils import get_installer
from plone.browserlayer.utils import registered_layers
from plone.registry.interfaces import IRegistry
from zope.component import getUtility

import os
import unittest


def configlet_ids(portal):
    return [action.getId() for action in portal.portal_controlpanel.listActions()]


class TestSetup(unittest.TestCase):
    layer = ZASYNC_INTEGRATION_TESTING

    def setUp(self):
        self.portal = self.layer["portal"]
        self.installer = get_installer(self.portal, self.layer["request"])

    def test_installed(self):
        self.assertTrue(self.installer.is_product_installed("collective.zasync"))

    def test_browserlayer(self):
        from collective.zasync.interfaces import ICollectiveZasyncLayer

        self.assertIn(ICollectiveZasyncLayer, registered_layers())

    def test_registry_records(self):
        self.assertEqual(api.portal.get_registry_record("collective.zasync.retention_days"), 7)
        self.assertEqual(api.portal.get_registry_record("collective.zasync.max_retries"), 5)

    def test_configlet(self):
        self.assertIn("zasync", configlet_ids(self.portal))

    def test_queue_container_created(self):
        from collective.zasync.interfaces import KEY

        self.assertIn(KEY, self.portal._p_jar.root())


class TestUninstall(unittest.TestCase):
    layer = ZASYNC_INTEGRATION_TESTING

    def setUp(self):
        self.portal = self.layer["portal"]
        setRoles(self.portal, TEST_USER_ID, ["Manager"])
        self.installer = get_installer(self.portal, self.layer["request"])
        self.installer.uninstall_product("collective.zasync")

    def test_uninstalled(self):
        from collective.zasync.interfaces import ICollectiveZasyncLayer

        actions = self.portal.portal_actions
        self.assertNotIn("zasync-my-jobs", actions.user.objectIds())
        self.assertNotIn("zasync-jobs", actions.object_buttons.objectIds())
        self.assertFalse(self.installer.is_product_installed("collective.zasync"))
        self.assertNotIn(ICollectiveZasyncLayer, registered_layers())
        self.assertNotIn("zasync", configlet_ids(self.portal))
        registry = getUtility(IRegistry)
        self.assertNotIn("collective.zasync.retention_days", registry.records)


class TestPublicNames(unittest.TestCase):
    def test_design_names(self):
        from collective.zasync import interfaces
        from collective.zasync import service
        from collective.zasync import testing

        expected = {
            "NEW": "new-status", "PENDING": "pending-status", "ASSIGNED": "assigned-status",
            "ACTIVE": "active-status", "CALLBACKS": "callback-status", "COMPLETED": "completed-status",
        }
        for name, value in expected.items():
            self.assertEqual(getattr(interfaces, name), value)
        for name in ("IAsyncService", "IJob", "IQueue", "IJobSuccess", "IJobFailure"):
            self.assertTrue(hasattr(interfaces, name), name)
        self.assertTrue(callable(service.makeJob))
        for name in ("wait_for_result", "ZASYNC_FIXTURE", "ZASYNC_INTEGRATION_TESTING", "ZASYNC_FUNCTIONAL_TESTING"):
            self.assertTrue(hasattr(testing, name), name)
        for method in ("queueJob", "queueJobWithDelay", "queueJobInQueue", "queueSerialJobs",
                       "queueParallelJobs", "getQueues"):
            self.assertIn(method, interfaces.IAsyncService)

    def test_zcml_files(self):
        import collective.zasync

        folder = os.path.dirname(collective.zasync.__file__)
        for name in ("configure.zcml", "single_db_instance.zcml", "single_db_worker.zcml",
                     "multi_db_instance.zcml", "multi_db_worker.zcml"):
            self.assertTrue(os.path.exists(os.path.join(folder, name)), name)
