"""Site settings (plone.app.registry), edited in the control panel.

``max_retries`` is read when a job is queued and stored on the job.
``retention_days`` is about the queue database, which workers clean without
a site: saving it copies it onto the queue root (``store_retention``).
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

    max_retries = schema.Int(
        title=_("Retries on ConflictError"),
        description=_(
            "How many times a job that hits a database conflict is run again "
            "(after a random, growing pause) before it fails."
        ),
        default=5,
        min=0,
        max=50,
    )


def copy_retention(site, days):
    """Store the retention on the queue root, where the workers read it."""
    get_queue_root(site._p_jar).retention_days = days


def store_retention(event):
    """Subscriber: the retention setting of a site was saved."""
    if event.record.__name__ == "collective.zasync.retention_days":
        site = getSite()
        if getattr(site, "_p_jar", None) is not None:
            copy_retention(site, event.newValue)
