"""``zasync smoke``: queue a harmless job and wait until a worker has run it.

An administrator runs it after a deployment: it goes the whole way a job goes
(the instance's configuration, the database, a live worker, its identity, the
user the job runs as) without any add-on's code. Not for add-ons.
"""

from collective.zasync.client import admin
from collective.zasync.client.lookup import get_service
from collective.zasync.client.metrics import alive_workers
from collective.zasync.core.priority import MAX_PRIORITY
from collective.zasync.core.queue import get_queue_root
from collective.zasync.interfaces import COMPLETED

import time
import transaction


class SmokeError(Exception):
    """The smoke check failed: the message says what is wrong."""


def ping(context):
    """The smoke check's job: who it runs as, on which site; it writes nothing."""
    from AccessControl import getSecurityManager

    return {
        "user": getSecurityManager().getUser().getId(),
        "site": "/".join(context.getPhysicalPath()),
    }


def find_user(site, user_name):
    """``user_name`` of the site's user folder or, failing that, of the Zope root's."""
    for folder in (site.acl_users, site.getPhysicalRoot().acl_users):
        user = folder.getUser(user_name)
        if user is not None:
            return user.__of__(folder)
    raise SmokeError(
        "no user %r in the site or the Zope root (--user): name a user who may use the site, "
        "such as the administrator that mkwsgiinstance -u created" % user_name
    )


def run(site, user_name="admin", queue="", timeout=60.0):
    """Queue ``ping`` as ``user_name``, commit, wait for a worker; return a report (a dict)."""
    from AccessControl.SecurityManagement import newSecurityManager

    user = find_user(site, user_name)
    newSecurityManager(None, user)
    service = get_service()
    if queue:
        job = service.queueJobInQueue(queue, (), ping, site, priority=MAX_PRIORITY)
    else:
        job = service.queueJob(ping, site, priority=MAX_PRIORITY)
    transaction.get().note("zasync smoke")
    transaction.commit()
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        transaction.begin()  # see what the workers committed
        if job.status == COMPLETED:
            return report(site, job, user, time.monotonic() - started)
        time.sleep(0.1)
    give_up(site, job, timeout)


def report(site, job, user, seconds):
    """The outcome of a completed smoke job, or SmokeError if it did not run as it should."""
    if job.failed:
        raise SmokeError(
            "the job %s failed on worker %s: %s" % (job.id, job.worker_uuid, job.result))
    ran_as = job.result.get("user")
    if ran_as != user.getId():
        raise SmokeError("the job %s ran as %r, not as %r" % (job.id, ran_as, user.getId()))
    worker = get_queue_root(site._p_jar).workers.get(job.worker_uuid)
    return {
        "job": job.id,
        "user": user.getId(),
        "worker": job.worker_uuid,
        "host": getattr(worker, "host", None),
        "pid": getattr(worker, "pid", None),
        "seconds": round(seconds, 2),
    }


def give_up(site, job, timeout):
    """Cancel the job no worker took, and say why it may be so."""
    transaction.begin()
    alive = alive_workers(get_queue_root(site._p_jar))
    if job.status != COMPLETED and job.started is None:
        admin.cancel(job)
        transaction.get().note("zasync smoke: cancelled, no worker took it")
        transaction.commit()
    if not alive:
        raise SmokeError(
            "no worker is alive: start one (zasync-worker -C zope.conf with ZASYNC_UUID set, or an "
            "instance with ZASYNC_WORKER=1); the job %s was cancelled" % job.id
        )
    raise SmokeError(
        "no worker ran the job %s within %g s, although %d worker(s) are alive: they may all be "
        "busy, or the queue held back (zasync status shows it); the job was cancelled"
        % (job.id, timeout, len(alive))
    )
