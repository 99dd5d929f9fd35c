"""Where a job runs: its site, a request, its user; and the paths that lead there.

The request stores the site's path (``find_site``, ``path_of``); the worker
sets the site, a request (``zope.globalrequest.getRequest()`` works in a
job) and the job's user (security.py) for the duration of a job.
"""

from AccessControl.SecurityManagement import newSecurityManager
from AccessControl.SecurityManagement import noSecurityManager
from AccessControl.SpecialUsers import nobody
from Acquisition import aq_base
from Acquisition import aq_chain
from Acquisition import aq_inner
from collective.zasync.security import find_user
from collective.zasync.security import UserGone
from persistent import Persistent
from Products.CMFCore.interfaces import ISiteRoot
from Testing.makerequest import makerequest
from zope.component.hooks import setSite
from zope.globalrequest import setRequest

import contextlib
import os


def path_of(obj):
    return "/".join(obj.getPhysicalPath())


def find_site(context):
    """The Plone site that ``context`` is in; ValueError if it is in none."""
    if not isinstance(aq_base(context), Persistent) or not hasattr(
        aq_base(context), "getPhysicalPath"
    ):
        raise ValueError(
            "Cannot queue a job for %r: the context must be a persistent "
            "object inside a Plone site (content, a folder, the site)." % (context,)
        )
    for obj in aq_chain(aq_inner(context)):
        if ISiteRoot.providedBy(obj):
            return obj
    raise ValueError(
        "Cannot queue a job for %r: it is not inside a Plone site (or it is "
        "not acquisition-wrapped; get it by traversal from the site)." % (context,)
    )


def make_request(app):
    """Wrap the app in a request, as a publisher would for a real one."""
    environ = {"SERVER_NAME": "localhost", "SERVER_PORT": "8080", "REQUEST_METHOD": "GET"}
    server_url = os.environ.get("ZASYNC_SERVER_URL")
    if server_url:
        scheme, _, rest = server_url.partition("://")
        host, _, port = rest.rstrip("/").partition(":")
        environ.update(SERVER_NAME=host, SERVER_PORT=port or ("443" if scheme == "https" else "80"))
        if scheme == "https":
            environ["HTTPS"] = "on"
    return makerequest(app, environ=environ)


@contextlib.contextmanager
def job_environment(root_app, job, strict=True):
    """Site, request and the job's user set up for the duration of the block.

    Yields the request-wrapped app. Raises UserGone (or LookupError for a
    missing site) before yielding; with ``strict=False`` it falls back to no
    site and Anonymous instead, for recording a failure.
    """
    app = make_request(root_app)
    request = app.REQUEST
    setRequest(request)
    try:
        site = app.unrestrictedTraverse(job.site_path.lstrip("/"), None)
        if site is None and strict:
            raise LookupError("The site %s no longer exists." % job.site_path)
        if site is not None:
            setSite(site)
            request["PARENTS"] = [site, app]
        try:
            if job.user_deleted:  # an account made since with that id is someone else (userlife.py)
                raise UserGone("User %r of %s no longer exists (deleted after the job was queued): the "
                               "job was not run." % (job.user_id, job.userfolder_path))
            user = find_user(app, job.userfolder_path, job.user_id)
        except UserGone:
            if strict:
                raise
            user = nobody
        newSecurityManager(request, user)
        yield app
    finally:
        noSecurityManager()
        setSite(None)
        setRequest(None)
        request.close()
