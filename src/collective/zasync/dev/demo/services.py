"""POST @zasync-demo: queue one of the demo's example jobs as the current user.

What Volto's demo (``make run-volto``) and its end-to-end test use to start
jobs that My jobs, an item's Background jobs and the control panel then show.
Only the fixed examples below can be queued: no callable name comes from the
request. Registered by demo/configure.zcml, which a site that installs the
add-on does not load.
"""

from collective.zasync.client import personal
from collective.zasync.client import reading
from collective.zasync.dev import examples
from collective.zasync.interfaces import IAsyncService
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone.protect.interfaces import IDisableCSRFProtection
from plone.restapi.deserializer import json_body
from plone.restapi.services import Service
from zope.component import getUtility
from zope.interface import alsoProvides


def queue_count(service, context):
    """A slow report that shows its progress (for 15 s: long enough to watch)."""
    return service.queueJob(examples.count_content, context, seconds=15)


def queue_later(service, context):
    """The same report, not before an hour from now: a job to cancel."""
    begin = datetime.now(timezone.utc) + timedelta(hours=1)
    return service.queueJobWithDelay(None, begin, examples.count_content, context)


def queue_fail_once(service, context):
    """A job that fails, and succeeds when retried from the control panel."""
    return service.queueJob(examples.fail_once, context)


EXAMPLES = {"count": queue_count, "later": queue_later, "fail-once": queue_fail_once}


class DemoPost(Service):
    """POST @zasync-demo with the JSON body {"example": "count" | "later" | "fail-once"}"""

    def reply(self):
        # A cross-site HTML form can send neither this content type nor an X-CSRF-TOKEN.
        content_type = self.request.getHeader("Content-Type", "")
        if not content_type.startswith("application/json"):
            return self.error(400, "Send a JSON body with Content-Type: application/json.")
        alsoProvides(self.request, IDisableCSRFProtection)
        example = (json_body(self.request) or {}).get("example")
        if example not in EXAMPLES:
            return self.error(400, "Unknown example %r: one of %s." % (example, ", ".join(sorted(EXAMPLES))))
        job = EXAMPLES[example](getUtility(IAsyncService), self.context)
        self.request.response.setStatus(201)
        return reading.jsonable(personal.personal_summary(job))

    def error(self, status, message):
        self.request.response.setStatus(status)
        return {"error": {"type": "BadRequest", "message": message}}
