"""Who may see and do what: the checks the control panel, My jobs, the REST API and the
service share, so that both front ends answer alike. Not for add-ons (``api.get_job`` checks).
"""

from AccessControl import getSecurityManager
from AccessControl import Unauthorized
from collective.zasync.client.sites import find_site
from collective.zasync.client.users import capture_user
from collective.zasync.core.indexes import user_key
from zope.component.hooks import getSite


def may_manage(context):
    """True if the current user has "Manage portal" on ``context``: every job of the site, arguments,
    tracebacks."""
    return bool(getSecurityManager().checkPermission("Manage portal", context))


def may_see(job):
    """True if the current user queued ``job`` (an account of that id not deleted since), or may manage the site."""
    if may_manage(find_site(getSite())):
        return True
    userfolder_path, user_id = capture_user()
    return user_id is not None and (job.userfolder_path, job.user_id) == (userfolder_path, user_id) and (
        not job.user_deleted)


def own_job(job, key):
    """True if ``job`` was queued by the user ``key`` (see indexes.user_key), not by a deleted
    account of the same id."""
    return user_key(job) == key and not job.user_deleted


def current_user_key():
    """(user folder path, user id) of the logged-in user; Unauthorized for Anonymous."""
    userfolder_path, user_id = capture_user()
    if user_id is None:
        raise Unauthorized("Log in to see your background jobs.")
    return userfolder_path, user_id


def may_change_database(context):
    """True if the current user may change what applies to every site of the queue database.

    That is a Manager of the Zope root ("Manage portal" there): a user of a
    site's own user folder has no role outside that site, whatever their roles in it.
    """
    return may_manage(context.getPhysicalRoot())


def check_database_change(context, what):
    """Raise Unauthorized, naming ``what``, unless the current user may change the whole database's settings."""
    if not may_change_database(context):
        raise Unauthorized(
            "%s applies to every site of the queue database: only a Manager of the Zope root "
            "changes it (log in as one, e.g. the admin user of the Zope root)." % what)
