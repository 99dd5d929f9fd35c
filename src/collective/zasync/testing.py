"""Test layers and helpers for collective.zasync and for add-ons that use it.

``ZASYNC_FUNCTIONAL_TESTING`` runs a worker (a dispatcher with two threads)
inside the test process on the test's own database: queue a job, call
``transaction.commit()``, then ``wait_for_result(job)``.
``ZASYNC_ACCEPTANCE_TESTING`` also serves the site over HTTP (for browser
and REST tests). Add-ons may import this module (it needs plone.app.testing).
"""

from collective.zasync.interfaces import COMPLETED
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.settings import WorkerSettings
from plone.app.contenttypes.testing import PLONE_APP_CONTENTTYPES_FIXTURE
from plone.app.testing import FunctionalTesting
from plone.app.testing import IntegrationTesting
from plone.app.testing import PloneSandboxLayer
from plone.testing.zope import WSGI_SERVER_FIXTURE

import time
import transaction


class ZasyncLayer(PloneSandboxLayer):
    defaultBases = (PLONE_APP_CONTENTTYPES_FIXTURE,)

    def setUpZope(self, app, configurationContext):
        import collective.zasync

        self.loadZCML(package=collective.zasync)

    def setUpPloneSite(self, portal):
        self.applyProfile(portal, "collective.zasync:default")


ZASYNC_FIXTURE = ZasyncLayer()


class WorkerFunctionalTesting(FunctionalTesting):
    """A functional layer with a worker running on the test's database."""

    worker_uuid = "00000000-0000-0000-0000-00000000test"

    def testSetUp(self):
        super().testSetUp()
        settings = WorkerSettings(threads=2, poll_interval=0.5, ping_interval=1.0,
                            death_interval=30.0, max_retries=3, stop_timeout=10.0)
        self["zasync_dispatcher"] = Dispatcher(self["zodbDB"], self.worker_uuid, settings)
        self["zasync_dispatcher"].start()

    def testTearDown(self):
        transaction.abort()
        self["zasync_dispatcher"].stop()
        del self["zasync_dispatcher"]
        super().testTearDown()


ZASYNC_INTEGRATION_TESTING = IntegrationTesting(
    bases=(ZASYNC_FIXTURE,), name="collective.zasync:Integration"
)
ZASYNC_FUNCTIONAL_TESTING = WorkerFunctionalTesting(
    bases=(ZASYNC_FIXTURE,), name="collective.zasync:Functional"
)
# The site served over real HTTP (layer["host"], layer["port"]), with a worker:
# for the control panel, REST and browser tests.
ZASYNC_ACCEPTANCE_TESTING = WorkerFunctionalTesting(
    bases=(ZASYNC_FIXTURE, WSGI_SERVER_FIXTURE), name="collective.zasync:Acceptance"
)


def wait_for_result(job, seconds=10):
    """Commit, wait until ``job`` is completed, and return ``job.result``.

    A job of a queue is also waited for until a worker has filed its end (within ``seconds``),
    so that what a test does next (an administrator's retry or removal) finds it filed.
    Raises AssertionError if it has not completed within ``seconds``.
    """
    transaction.commit()
    deadline = time.monotonic() + seconds
    while True:
        transaction.begin()  # see what the worker committed
        if job.status == COMPLETED and (_filed(job) or time.monotonic() > deadline):
            return job.result
        if time.monotonic() > deadline:
            raise AssertionError(
                "Job %s is still %s after %s seconds." % (job.id, job.status, seconds)
            )
        time.sleep(0.02)


def _filed(job):
    """True unless ``job`` is a job of a queue whose end no worker has filed yet."""
    from collective.zasync.core.queue import get_queue_root
    from collective.zasync.core.places import is_filed_finished

    root = get_queue_root(job._p_jar, create=False) if job._p_jar is not None else None
    queue = root.queues.get(job.queue_name) if root is not None else None
    if queue is None or queue.jobs.get(job.id) is not job:
        return True  # (a callback, a job of no queue: nobody files it)
    return is_filed_finished(queue, job)


def wait_until(condition, what="the condition", seconds=20):
    """Begin new transactions until ``condition()`` is true (what other threads committed).

    Raises AssertionError naming ``what`` if it is still false after ``seconds``.
    """
    deadline = time.monotonic() + seconds
    while True:
        transaction.begin()
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError("Timed out after %s seconds waiting for %s." % (seconds, what))
        time.sleep(0.05)
