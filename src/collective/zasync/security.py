"""Who a job runs as and where: captured in the request, restored in the worker.

Only the site path, the user folder's path and the user id are stored: no
cookie, no Authorization header, no password. The worker looks the user up
again; if the user is gone, the job fails: it never runs as someone else.
"""

from AccessControl.SecurityManagement import getSecurityManager
from AccessControl.SecurityManagement import newSecurityManager
from AccessControl.SecurityManagement import noSecurityManager
from AccessControl.SpecialUsers import nobody
from AccessControl.SpecialUsers import system
from Acquisition import aq_base
from Acquisition import aq_chain
from Acquisition import aq_inner
from Acquisition import aq_parent
from persistent import Persistent
from Products.CMFCore.interfaces import ISiteRoot
from Testing.makerequest import makerequest
from zope.component.hooks import setSite
from zope.globalrequest import setRequest

import contextlib
import os


class UserGone(LookupError):
    """The user who queued a job no longer exists."""


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


def capture_user():
    """(userfolder_path, user_id) of the current user; (None, None) for Anonymous."""
    user = getSecurityManager().getUser()
    if user is None or aq_base(user) is aq_base(nobody) or user.getUserName() == "Anonymous User":
        return None, None
    if aq_base(user) is aq_base(system):
        raise ValueError(
            "Cannot queue a job as the system user: it has every right and "
            "no user folder. Log in, or use plone.api.env.adopt_user, first."
        )
    userfolder = aq_parent(aq_inner(user))
    if userfolder is None or not hasattr(userfolder, "getUserById"):
        raise ValueError(
            "Cannot queue a job as %r: the user does not come from a user "
            "folder, so the worker could not find it again." % user.getId()
        )
    return path_of(userfolder), user.getId()


def find_user(app, userfolder_path, user_id):
    """The stored user, wrapped in its user folder; UserGone if it is not there."""
    if user_id is None:
        return nobody
    userfolder = app.unrestrictedTraverse(userfolder_path.lstrip("/"), None)
    user = userfolder.getUserById(user_id) if userfolder is not None else None
    if user is None:
        raise UserGone(
            "User %r no longer exists in %s: the job was not run (it never "
            "runs as another user)." % (user_id, userfolder_path)
        )
    if not hasattr(user, "aq_base"):
        user = user.__of__(userfolder)
    return user


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
