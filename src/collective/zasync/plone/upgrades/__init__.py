"""The profile's upgrade steps, one module per profile version (registered in configure.zcml).
Not for add-ons."""

from collective.zasync.core.indexes import build_indexes
from collective.zasync.core.queue import get_queue_root
from plone import api

import logging


log = logging.getLogger("collective.zasync")


def index_jobs(what):
    """Index the jobs that the site's queue database keeps (for databases written before an index)."""
    site = api.portal.get()
    count = build_indexes(get_queue_root(site._p_jar), site)
    log.info("Indexed %d jobs %s.", count, what)
