"""The content rule action "Run in the background" (plone.app.contentrules). Not for add-ons.

It queues a registered job function (jobfunctions.py) for the rule's object,
in a chosen queue, as the user whose action fired the rule: the job runs with
that user's rights, never the rule's author's. A user without the function's
permission on the object queues nothing (logged), and the rule's further
actions are not executed, as with any failing action.
"""

from Acquisition import aq_inner
from collective.zasync.client.lookup import get_service
from collective.zasync.i18n import _
from collective.zasync.plone.jobfunctions import get_job_function
from OFS.SimpleItem import SimpleItem
from plone.app.contentrules.actions import ActionAddForm
from plone.app.contentrules.actions import ActionEditForm
from plone.app.contentrules.browser.formhelper import ContentRuleFormWrapper
from plone.contentrules.rule.interfaces import IExecutable
from plone.contentrules.rule.interfaces import IRuleElementData
from zope import schema
from zope.component import adapter
from zope.interface import implementer
from zope.interface import Interface

import logging


log = logging.getLogger("collective.zasync")


class IRunInBackgroundAction(Interface):
    """What the action runs, and in which queue."""

    function = schema.Choice(
        title=_("Job"),
        description=_("A background job that an add-on offers (only those you may run are listed)."),
        vocabulary="collective.zasync.JobFunctions",
        required=True,
    )
    queue = schema.TextLine(
        title=_("Queue"),
        description=_("The name of the queue to run it in; empty: the default queue."),
        required=False,
        default="",
    )


@implementer(IRunInBackgroundAction, IRuleElementData)
class RunInBackgroundAction(SimpleItem):
    """The stored action: a rule element."""

    function = ""
    queue = ""
    element = "collective.zasync.RunInBackground"

    @property
    def summary(self):
        try:
            title = get_job_function(self.function).title
        except LookupError:
            title = self.function
        return _("Run ${job} in the background (queue ${queue})",
                 mapping={"job": title, "queue": self.queue or _("default")})


@adapter(Interface, IRunInBackgroundAction, Interface)
@implementer(IExecutable)
class RunInBackgroundExecutor:
    """Queues the job for the event's object when the rule fires."""

    def __init__(self, context, element, event):
        self.context = context
        self.element = element
        self.event = event

    def __call__(self):
        obj = aq_inner(getattr(self.event, "object", None) or self.context)
        function = get_job_function(self.element.function)
        if not function.allowed(obj):
            log.warning("Content rule: the current user may not run %s on %s (%s needed); not queued.",
                        function.name, "/".join(obj.getPhysicalPath()), function.permission)
            return False
        job = get_service().queueJobInQueue(self.element.queue or "", (), function.function, obj)
        log.info("Content rule: queued job %s (%s).", job.id, job.describe())
        return True


class RunInBackgroundAddForm(ActionAddForm):
    schema = IRunInBackgroundAction
    label = _("Add Run in the background action")
    description = _("Queue a background job for the object of the rule, run as the user "
                    "whose action triggered the rule.")
    form_name = _("Configure element")
    Type = RunInBackgroundAction


class RunInBackgroundAddFormView(ContentRuleFormWrapper):
    form = RunInBackgroundAddForm


class RunInBackgroundEditForm(ActionEditForm):
    schema = IRunInBackgroundAction
    label = _("Edit Run in the background action")
    description = RunInBackgroundAddForm.description
    form_name = _("Configure element")


class RunInBackgroundEditFormView(ContentRuleFormWrapper):
    form = RunInBackgroundEditForm
