"""Smoke test of an installed collective.zasync (scripts/check-dist.sh runs it in a fresh venv).

Sets up ZASYNC_FUNCTIONAL_TESTING by hand (its ZCML, a Plone site with the
collective.zasync:default profile, a worker in this process), queues one job as a Member
created for the purpose and checks it completed, run as that Member.
Usage: python -I dist_smoke.py SOURCE_ROOT   (from outside the source tree)
"""

from importlib.metadata import distribution
from pathlib import Path

import sys


USER = "zasync-smoke"


def check_installed(source_root):
    """collective.zasync comes from this venv's site-packages, not from the source tree."""
    import collective.zasync

    where = Path(collective.zasync.__file__).resolve()
    in_tree = Path(source_root).resolve() in where.parents
    if in_tree or Path(sys.prefix).resolve() not in where.parents:
        sys.exit("smoke: collective.zasync imported from %s, not from the fresh virtualenv" % where)
    eps = distribution("collective.zasync").entry_points
    plugins = [ep.value for ep in eps if ep.group == "plone.autoinclude.plugin"]
    if plugins != ["plone"]:
        sys.exit("smoke: the plone.autoinclude entry point is %r, not ['plone']" % plugins)
    return where


# The job: an add-on's module, written beside this script's run (the test suite's job
# functions are not installed with the package).
SMOKE_JOBS = """
from AccessControl import getSecurityManager
from plone import api


def whoami(context):
    user = getSecurityManager().getUser()
    return {
        "id": user.getId(),
        "roles": sorted(api.user.get_roles(obj=context)),
        "manage_portal": bool(getSecurityManager().checkPermission("Manage portal", context)),
    }
"""


def run_job(layer):
    """Queue whoami as a Member; return its result once the worker completed it."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="zasync-smoke-jobs-")
    Path(folder, "smoke_jobs.py").write_text(SMOKE_JOBS)
    sys.path.insert(0, folder)
    import smoke_jobs

    from collective.zasync.interfaces import IAsyncService
    from collective.zasync.testing import wait_for_result
    from plone import api
    from plone.app.testing import login
    from plone.app.testing import setRoles
    from plone.app.testing import TEST_USER_ID
    from plone.app.testing import TEST_USER_NAME
    from zope.component import getUtility

    portal = layer["portal"]
    setRoles(portal, TEST_USER_ID, ["Manager"])
    login(portal, TEST_USER_NAME)
    api.user.create(
        email="smoke@example.org", username=USER, password="smoke-Pw-1", roles=["Member"]
    )
    login(portal, USER)
    job = getUtility(IAsyncService).queueJob(smoke_jobs.whoami, portal)
    try:
        return wait_for_result(job, seconds=30)
    except AssertionError as error:
        sys.exit("smoke: %s Result: %s" % (error, job.result))


def main(source_root):
    where = check_installed(source_root)
    from collective.zasync.testing import ZASYNC_FUNCTIONAL_TESTING as layer

    # What zope.testrunner does for one test: set up the bases first, then the test's setUp.
    order = list(reversed(layer.baseResolutionOrder))
    done = []
    try:
        for each in order:
            each.setUp()
            done.append(each)
        for each in order:
            each.testSetUp()
        try:
            result = run_job(layer)
        finally:
            for each in reversed(order):
                each.testTearDown()
    finally:
        for each in reversed(done):
            each.tearDown()

    if not isinstance(result, dict):  # a failed job is completed too, with a Failure
        sys.exit("smoke: the job failed: %s" % result)
    manager = "Manager" in result["roles"] or result["manage_portal"]
    if result["id"] != USER or manager:
        sys.exit("smoke: the job did not run as the Member %s: %r" % (USER, result))
    print("smoke: collective.zasync from %s; a job queued by Member %r completed as %r (roles %s)"
          % (where.parent, USER, result["id"], ", ".join(result["roles"])))


if __name__ == "__main__":
    main(sys.argv[1])
