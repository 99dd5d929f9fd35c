"""Site settings (plone.app.registry), edited in the control panel."""

from collective.zasync.i18n import _
from zope import schema
from zope.interface import Interface


class ISettings(Interface):
    """Records under ``collective.zasync.``."""

    retention_days = schema.Int(
        title=_("Keep finished jobs (days)"),
        description=_(
            "Completed and failed jobs older than this are removed by the workers. "
            "Workers read it from the site; zope.conf's retention-days is the fallback."
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
