"""Create a Plone site with collective.zasync installed, unless it exists. Not for add-ons.

Usage: zconsole run etc/zope.conf create_site.py [SITE_ID] [ADMIN_USER:PASSWORD] [CONCURRENCY]
   or: bin/instance run create_site.py [SITE_ID] [ADMIN_USER:PASSWORD] [CONCURRENCY]   (buildout)

CONCURRENCY sets the site setting "Jobs of the default queue that run at once"
(default 1: one job at a time, in order, as in plone.app.async).
"""

from AccessControl.SecurityManagement import newSecurityManager
import sys
import transaction


def create_site(app, site_id="Plone", admin="admin:admin", concurrency=None):
    """Add the admin user and the site if missing; return the site."""
    user_name, _, password = admin.partition(":")
    if app.acl_users.getUserById(user_name) is None:
        app.acl_users._doAddUser(user_name, password, ["Manager"], [])
    newSecurityManager(None, app.acl_users.getUserById(user_name).__of__(app.acl_users))
    if site_id not in app.objectIds():
        from Products.CMFPlone.factory import addPloneSite

        addPloneSite(
            app,
            site_id,
            title="collective.zasync demo",
            setup_content=False,
            extension_ids=(
                "plone.app.contenttypes:default",
                "plonetheme.barceloneta:default",
                "collective.zasync:default",
            ),
        )
        transaction.commit()
        print("Created the site /%s" % site_id)
    else:
        print("The site /%s exists already" % site_id)
    site = app[site_id]
    if concurrency is not None:
        from collective.zasync.plone.settings import copy_to_queue_database

        site.portal_registry["collective.zasync.default_queue_concurrency"] = int(concurrency)
        copy_to_queue_database(site)
        transaction.commit()
        print("The default queue runs %s jobs at once" % concurrency)
    return site


if __name__ == "__main__":
    # zconsole leaves its own arguments in sys.argv ("zconsole run CONF SCRIPT ARGS"),
    # buildout's "bin/instance run SCRIPT ARGS" does not: take what follows this script.
    script = next(i for i, arg in enumerate(sys.argv) if arg.endswith("create_site.py"))
    create_site(app, *sys.argv[script + 1 :])  # noqa: F821 (bound by zconsole or bin/instance run)
