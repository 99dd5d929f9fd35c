"""Who a job runs as: captured in the request, looked up again in the worker.

Only the user folder's path and the user id are stored: no cookie, no
Authorization header, no password. The worker looks the user up again; if
the user is gone, the job fails: it never runs as someone else.
"""

from AccessControl.SecurityManagement import getSecurityManager
from AccessControl.SpecialUsers import nobody
from AccessControl.SpecialUsers import system
from Acquisition import aq_base
from Acquisition import aq_inner
from Acquisition import aq_parent


class UserGone(LookupError):
    """The user who queued a job no longer exists."""


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
    return "/".join(userfolder.getPhysicalPath()), user.getId()


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
