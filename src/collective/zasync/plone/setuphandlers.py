"""Install and uninstall steps. Not for add-ons."""

from collective.zasync.core.queue import get_queue_root
from collective.zasync.plone.settings import sync_with_queue_database
from plone.base.interfaces import INonInstallable
from zope.component.hooks import getSite
from zope.interface import implementer


@implementer(INonInstallable)
class HiddenProfiles:
    def getNonInstallableProfiles(self):
        """Hide the uninstall profile from the add-ons control panel."""
        return ["collective.zasync:uninstall"]


def post_install(context):
    """Create the queue container now, so that the first requests that queue
    jobs do not all try to create it at once (and conflict); show the queue
    database's settings in the site's."""
    site = getSite()
    get_queue_root(site._p_jar)
    sync_with_queue_database(site)
