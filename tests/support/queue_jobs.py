"""Queue test jobs from a client process (for the multi-process tests and benchmarks).

Usage: zconsole run etc/zope.conf queue_jobs.py SITE_ID USER FUNCTION COUNT [ARG ...]

FUNCTION is a name in tests.sample_jobs (or a "module:name"); each job gets ``prefix-N``
(for log_id) or the ARGs. Prints the job ids, one per line.
"""

from AccessControl.SecurityManagement import newSecurityManager
from tests.support import sample_jobs
from collective.zasync.core.calls import resolve_dotted
from collective.zasync.interfaces import IAsyncService
from Testing.makerequest import makerequest
from zope.component import getUtility
from zope.component.hooks import setSite

import sys
import transaction


def open_site_as(app, site_id, user_id):
    """(site, service): the site set up as in a request of ``user_id``, its IAsyncService."""
    app = makerequest(app)
    site = app[site_id]
    setSite(site)
    user = site.acl_users.getUserById(user_id) or app.acl_users.getUserById(user_id)
    newSecurityManager(None, user)
    return site, getUtility(IAsyncService)


def queue_jobs(app, site_id, user_id, function, count, *args, per_transaction=1):
    site, service = open_site_as(app, site_id, user_id)
    func = resolve_dotted(function) if ":" in function else getattr(sample_jobs, function)
    if getattr(site, "_zasync_test_marks", None) is None:
        from BTrees.OOBTree import OOBTree

        site._zasync_test_marks = OOBTree()  # created once, not by racing jobs
        transaction.commit()
    ids = []
    for n in range(int(count)):
        if function in ("log_id", "mark", "sleep_and_mark", "hot_write", "mark_outside_too"):
            job_args = ("%s-%d" % (args[0] if args else "job", n),) + tuple(args[1:])
        else:
            job_args = args
        job = service.queueJob(func, site, *job_args)
        ids.append(job.id)
        if len(ids) % per_transaction == 0:
            transaction.commit()
    transaction.commit()
    return ids


if __name__ == "__main__":
    site_id, user_id, function, count, *rest = sys.argv[sys.argv.index("run") + 3 :]
    for job_id in queue_jobs(app, site_id, user_id, function, count, *rest):  # noqa: F821
        print(job_id)
