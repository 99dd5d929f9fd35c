"""A worker instance configured by environment variables only, as in containers.

Plone's official backend image (plone/plone-backend) writes zope.conf from
environment variables and loads add-ons' ZCML with plone.autoinclude, so a
container cannot easily include ``single_db_worker.zcml``. Instead every
instance (this subscriber is in the add-on's own ZCML) becomes a worker when
it starts with ``ZASYNC_WORKER=1``; ``ZASYNC_UUID``, ``ZASYNC_THREADS`` and
the other ``ZASYNC_<SETTING>`` variables (workersettings.py) configure it.
"""

from collective.zasync import worker

import logging
import os


log = logging.getLogger("collective.zasync")

TRUE = ("1", "true", "yes", "on")


def worker_requested(environ=None):
    """True if ZASYNC_WORKER asks this instance to run jobs."""
    return (os.environ if environ is None else environ).get("ZASYNC_WORKER", "").lower() in TRUE


def start_if_requested(event=None):
    """Subscriber of IProcessStarting: start the worker if ZASYNC_WORKER says so."""
    if not worker_requested():
        return None
    log.info("ZASYNC_WORKER is set: this instance runs jobs.")
    return worker.start_worker(event)
