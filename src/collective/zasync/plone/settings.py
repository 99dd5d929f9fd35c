"""Site settings (plone.app.registry), edited in the control panel.

``max_retries`` is read when a job is queued and stored on the job;
``health_max_wait`` by the health check: both are the site's own.
``retention_days`` and ``default_queue_concurrency`` apply to the whole queue
database, which the workers read without a site and which every site in it
shares: changing one needs the Zope root's Manager, however it is changed
(the form, ``@controlpanels``, ``@registry``, registry.xml, code), and the new
value is copied to the queue database and to the settings of the other
sites that share it (``store_setting``). Not for add-ons (the registry records are the API).
"""

from Acquisition import aq_base
from collective.zasync.client.permissions import check_database_change
from collective.zasync.core.queue import get_queue_root
from collective.zasync.i18n import _
from plone.base.interfaces import IPloneSiteRoot
from zope import schema
from zope.component.hooks import getSite
from zope.interface import Interface


class ISettings(Interface):
    """Records under ``collective.zasync.``."""

    retention_days = schema.Int(
        title=_("Keep finished jobs (days)"),
        description=_(
            "Completed and failed jobs older than this are removed by the workers. "
            "It applies to the whole queue database (shared by every site in it): only a "
            "Manager of the Zope root changes it. zope.conf's retention-days applies until set."
        ),
        default=7,
        min=0,
    )

    default_queue_concurrency = schema.Int(
        title=_("Jobs of the default queue that run at once"),
        description=_(
            "1, as in plone.app.async: jobs queued with queueJob run one after the other, in the "
            "order they were queued, over all workers. More runs them in parallel, still started "
            "in order; 0 sets no limit and no order (jobs on the same content in parallel often "
            "conflict). Named queues have their own limit. It applies to the whole queue database: "
            "only a Manager of the Zope root changes it."
        ),
        default=1,
        min=0,
        max=1000,
    )

    max_retries = schema.Int(
        title=_("Conflict retries"),
        description=_(
            "How many times an attempt of a job that hits a database conflict "
            "(ConflictError) is run again (after a random, growing pause) before "
            "the job fails. Retry policies (retry_on) count attempts apart from these."
        ),
        default=5,
        min=0,
        max=50,
    )

    health_max_wait = schema.Int(
        title=_("Health check: longest wait of a due job (seconds)"),
        description=_(
            "@@zasync-health answers 503 (failing) when a job that is due has waited longer than "
            "this for a worker, or when no worker is alive. Empty: 300."
        ),
        default=300,
        min=1,
        required=False,  # forms of before this setting, posted without it, still save
    )


def _retention(root):
    return root.retention_days


def _set_retention(root, days):
    root.retention_days = days


def _concurrency(root):
    return root.queues[""].concurrency or 0  # None (no limit) is the setting's 0


def _set_concurrency(root, size):
    root.queues[""].concurrency = size or None


# The records that apply to the whole queue database: name -> (read, write) on the QueueRoot.
DATABASE_WIDE = {
    "collective.zasync.retention_days": (_retention, _set_retention),
    "collective.zasync.default_queue_concurrency": (_concurrency, _set_concurrency),
}
DATABASE_WIDE_FIELDS = tuple(name.rsplit(".", 1)[1] for name in DATABASE_WIDE)


def store_setting(event):
    """Subscriber: a record was changed; one of the whole queue database is copied there.

    Unchanged (the database has that value already), nothing is written
    and anyone may save it, as the settings form of a site's Manager does.
    """
    name = event.record.__name__
    site = getSite()
    if name not in DATABASE_WIDE or getattr(site, "_p_jar", None) is None:
        return
    read, write = DATABASE_WIDE[name]
    root = get_queue_root(site._p_jar)
    if read(root) == event.newValue:
        return
    check_database_change(site, "The setting %s" % name)
    write(root, event.newValue)
    share_setting(site, root, name, event.newValue)


def share_setting(site, root, name, value):
    """Show ``value`` in the settings of the other Plone sites (of the Zope root) that share ``root``."""
    for other in site.getPhysicalRoot().objectValues():
        if not IPloneSiteRoot.providedBy(other) or aq_base(other) is aq_base(site):
            continue
        registry = getattr(aq_base(other), "portal_registry", None)
        if registry is None or name not in registry.records or registry[name] == value:
            continue
        if get_queue_root(other._p_jar, create=False) is root:
            registry[name] = value  # (store_setting: the database has it already)


def copy_to_queue_database(site):
    """Copy the site's settings of the whole queue database there (a script or upgrade run by an administrator)."""
    root = get_queue_root(site._p_jar)
    for name, (_read, write) in DATABASE_WIDE.items():
        value = site.portal_registry.get(name)
        if value is not None:
            write(root, value)


def sync_with_queue_database(site):
    """At install: the queue database's settings into the site's, the site's where the database has none.

    Installing the add-on in a second site never changes what the first one set.
    """
    root = get_queue_root(site._p_jar)
    registry = site.portal_registry
    for name, (read, write) in DATABASE_WIDE.items():
        value = read(root)
        if value is None:
            write(root, registry[name])  # a new database: the defaults
        elif registry[name] != value:
            registry[name] = value
