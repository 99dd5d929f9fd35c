"""Who a job runs as: captured in the request (looked up again in the worker: worker/environment.py).

Only the user folder's path and the user id are stored: no cookie, no
Authorization header, no password. Not for add-ons.
"""

from AccessControl.SecurityManagement import getSecurityManager
from AccessControl.SpecialUsers import nobody
from AccessControl.SpecialUsers import system
from Acquisition import aq_base
from Acquisition import aq_inner
from Acquisition import aq_parent


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


def user_key_of_current_user():
    """(user folder path, user id) of the current user, as ``indexes.user_key`` keys jobs; None for Anonymous."""
    userfolder_path, user_id = capture_user()
    return (userfolder_path, user_id) if user_id is not None else None
