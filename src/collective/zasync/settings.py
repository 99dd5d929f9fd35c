"""Site settings (plone.app.registry), edited in the control panel.

``max_retries`` is read when a job is queued and stored on the job.
``retention_days`` and ``default_queue_concurrency`` are about the queue
database, which workers read without a site: saving one copies it there
(``store_setting``).
"""

from collective.zasync.i18n import _
from collective.zasync.queue import get_queue_root
from zope.component.hooks import getSite
from zope import schema
from zope.interface import Interface


class ISettings(Interface):
    """Records under ``collective.zasync.``."""

    retention_days = schema.Int(
        title=_("Keep finished jobs (days)"),
        description=_(
            "Completed and failed jobs older than this are removed by the workers. "
            "It applies to the whole queue database (shared by every site in it); "
            "zope.conf's retention-days applies until a site sets it."
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
            "conflict). Named queues have their own limit. It applies to the whole queue database."
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


def copy_retention(site, days):
    """Store the retention on the queue root, where the workers read it."""
    get_queue_root(site._p_jar).retention_days = days


def copy_default_queue_concurrency(site, size):
    """Store the default queue's concurrency on the queue, where the workers read it."""
    get_queue_root(site._p_jar).queues[""].concurrency = size or None  # 0: no limit


COPIED = {
    "collective.zasync.retention_days": copy_retention,
    "collective.zasync.default_queue_concurrency": copy_default_queue_concurrency,
}


def copy_to_queue_database(site):
    """Copy every setting that workers read from the site's registry to the queue database."""
    for name, copy in COPIED.items():
        value = site.portal_registry.get(name)
        if value is not None:
            copy(site, value)


def store_setting(event):
    """Subscriber: a setting of a site was saved; copy it where the workers read it."""
    copy = COPIED.get(event.record.__name__)
    site = getSite()
    if copy is not None and getattr(site, "_p_jar", None) is not None:
        copy(site, event.newValue)

