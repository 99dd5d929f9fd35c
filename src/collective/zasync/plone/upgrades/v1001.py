"""Profile version 1001: the new settings, and the queue database's layout. Not for add-ons."""

from collective.zasync.core.migration import migrate
from collective.zasync.core.queue import get_queue_root
from collective.zasync.plone.settings import sync_with_queue_database
from plone import api


def upgrade(context):
    """GenericSetup upgrade step: the new settings, and the queue database's layout."""
    context.runImportStepFromProfile("profile-collective.zasync:default", "plone.app.registry")
    site = api.portal.get()
    migrate(get_queue_root(site._p_jar))
    sync_with_queue_database(site)
