"""Where a job runs: its site, a request, its user, set up for the duration of the job. Not for add-ons.

The request that queued the job stored the site's path and the user's id and user
folder (client/users.py); the worker sets the site, a request
(``zope.globalrequest.getRequest()`` works in a job) and the job's user, looked up
again: if the user is gone, the job fails. It never runs as someone else.
"""

from AccessControl.SecurityManagement import newSecurityManager
from AccessControl.SecurityManagement import noSecurityManager
from AccessControl.SpecialUsers import nobody
from Testing.makerequest import makerequest
from zope.component.hooks import setSite
from zope.globalrequest import setRequest

import contextlib
import os


class UserGone(LookupError):
    """The user who queued a job no longer exists."""


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
            if job.user_deleted:  # an account made since with that id is someone else (plone/userlife.py)
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
