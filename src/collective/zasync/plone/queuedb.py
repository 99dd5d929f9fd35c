"""Where the queues live: the main database, or a separate ``async`` one (multi_db_instance.zcml).
Not for add-ons: a site names its queue database in ZCML."""

from collective.zasync.interfaces import IQueueDatabase
from zope.interface import implementer


@implementer(IQueueDatabase)
class QueueDatabase:
    """Names the ZODB database (zope.conf ``<zodb_db NAME>``) holding the queues."""

    def __init__(self, name):
        self.name = name


# Registered by multi_db_instance.zcml: the queue in <zodb_db async>, so that
# its churn stays out of the main database (as plone.app.async did).
ASYNC_DATABASE = QueueDatabase("async")
