"""plone.restapi services: queues, jobs and workers, for Volto or scripts. Not for add-ons
(the services are the API).

    GET    @zasync-queues                             queues with counts, recurring jobs, workers
    GET    @zasync-jobs?queue=&state=&b_start=&b_size=  one page of a queue's jobs in a state
    GET    @zasync-jobs/<id>                          one job: arguments, result, traceback, progress
    POST   @zasync-jobs/<id>/retry                    queue a failed job again (run again)
    POST   @zasync-jobs/<id>/cancel                   cancel a pending or delayed job;
                                                      ask a running one to stop
    DELETE @zasync-jobs/<id>                          remove a finished job
    DELETE @zasync-jobs?queue=&state=failed|completed remove all of them

All need "Manage portal" (registered in configure.zcml). Jobs are never
created here. Errors are ``{"error": {"type": ..., "message": ...}}`` with
404 for an unknown job, 400 for an action that does not apply, 403 for a
POST that is neither JSON nor carries a CSRF token (``not_json_nor_token``).
"""

from collective.zasync.client import admin
from collective.zasync.client import reading
from collective.zasync.client.sites import site_path_of
from collective.zasync.defaults import MAX_PAGE_SIZE
from collective.zasync.defaults import PAGE_SIZE
from datetime import datetime
from datetime import timezone
from plone.protect.authenticator import check as check_authenticator
from plone.protect.interfaces import IDisableCSRFProtection
from plone.restapi.services import Service
from urllib.parse import urlencode
from zExceptions import Forbidden
from zope.interface import alsoProvides
from zope.interface import implementer
from zope.publisher.interfaces import IPublishTraverse


def is_json_or_has_token(request):
    """True if ``request`` has a JSON body, or a valid plone.protect token (X-CSRF-TOKEN header).

    A cross-site form can post urlencoded or multipart data, never
    ``Content-Type: application/json`` (that needs a CORS preflight), and
    ``++api++`` makes any request a JSON API request: Accept alone proves nothing.
    """
    content_type = (request.getHeader("Content-Type") or "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return True
    try:
        check_authenticator(request)
    except Forbidden:
        return False
    return True


class BaseService(Service):
    def error(self, status, type_, message):
        self.request.response.setStatus(status)
        return {"error": {"type": type_, "message": message}}

    def not_json_nor_token(self):
        """The 403 answer to a write that could come from a cross-site form, else None.

        Called by every POST service before it switches plone.protect off.
        """
        if is_json_or_has_token(self.request):
            alsoProvides(self.request, IDisableCSRFProtection)
            return None
        return self.error(403, "Forbidden", "Send this request with a JSON body (Content-Type: "
                          "application/json) or Plone's CSRF token in the X-CSRF-TOKEN header.")

    @property
    def root(self):
        return reading.queue_root(self.context)

    @property
    def site_path(self):
        """This site's path: its jobs are the only ones these services see (sites share the queue database)."""
        return site_path_of(self.context)

    def site_url(self):
        return self.context.absolute_url()

    def job_url(self, job_id):
        return "%s/@zasync-jobs/%s" % (self.site_url(), job_id)

    def jobs_url(self, **params):
        return "%s/@zasync-jobs?%s" % (self.site_url(), urlencode(params))


@implementer(IPublishTraverse)
class JobsService(BaseService):
    """Base of the @zasync-jobs services: path segments become ``self.params``."""

    def __init__(self, context, request):
        super().__init__(context, request)
        self.params = []

    def publishTraverse(self, request, name):
        self.params.append(name)
        return self

    def find(self, job_id):
        return admin.find_job(self.root.queues, job_id, self.site_path)

    def not_found(self, job_id):
        return self.error(404, "NotFound", "There is no background job %r." % job_id)

    def detail(self, job):
        info = reading.jsonable(reading.job_detail(job))
        info["@id"] = self.job_url(job.id)
        return info

    def queue_and_state(self, states):
        """(queue, state, None) from the query string, or (None, None, error)."""
        form = self.request.form
        name = form.get("queue", "")
        state = form.get("state")
        if name not in self.root.queues:
            return None, None, self.error(400, "BadRequest", "There is no queue %r." % name)
        if state not in states:
            return None, None, self.error(
                400, "BadRequest", "state must be one of %s, not %r." % (", ".join(states), state))
        return self.root.queues[name], state, None


class QueuesGet(BaseService):
    """GET @zasync-queues"""

    def reply(self):
        root = self.root
        now = datetime.now(timezone.utc)
        queues = []
        for name, queue in root.queues.items():
            queues.append({
                "name": name,
                "counts": reading.queue_counts(root, queue, now, self.site_path),
                "jobs": {state: self.jobs_url(queue=name, state=state) for state in reading.STATES},
                "recurring": [reading.jsonable(reading.recurrence_info(recurrence))
                              for recurrence in reading.recurrences(queue, self.site_path)],
                "rate_limits": reading.rate_limits_info(queue),
            })
        return {
            "@id": "%s/@zasync-queues" % self.site_url(),
            "queues": queues,
            "workers": [reading.jsonable(reading.worker_info(worker))
                        for worker in root.workers.values()],
        }


class JobsGet(JobsService):
    """GET @zasync-jobs?queue=&state= (a page) or @zasync-jobs/<id> (one job)"""

    def reply(self):
        if len(self.params) == 1:
            job = self.find(self.params[0])
            return self.detail(job) if job is not None else self.not_found(self.params[0])
        if self.params:
            return self.error(404, "NotFound", "No such resource: %s." % "/".join(self.params))
        return self.listing()

    def listing(self):
        queue, state, error = self.queue_and_state(reading.STATES)
        if error is not None:
            return error
        try:
            b_start = max(int(self.request.form.get("b_start", 0)), 0)
            b_size = min(max(int(self.request.form.get("b_size", PAGE_SIZE)), 1), MAX_PAGE_SIZE)
        except (TypeError, ValueError):
            return self.error(400, "BadRequest", "b_start and b_size are integers.")
        now = datetime.now(timezone.utc)
        jobs, more = reading.page(reading.jobs_in_state(self.root, queue, state, now, self.site_path),
                                  b_start, b_size)
        total = max(reading.queue_counts(self.root, queue, now, self.site_path)[state], b_start + len(jobs))
        items = []
        for job in jobs:
            item = reading.jsonable(reading.job_summary(job, now))
            item["@id"] = self.job_url(job.id)
            items.append(item)

        def url(start):
            return self.jobs_url(queue=queue.name, state=state, b_start=start, b_size=b_size)

        batching = {"@id": url(b_start), "first": url(0),
                    "last": url(max(total - 1, 0) // b_size * b_size)}
        if b_start > 0:
            batching["prev"] = url(max(b_start - b_size, 0))
        if more:
            batching["next"] = url(b_start + b_size)
        return {
            "@id": url(b_start),
            "queue": queue.name,
            "state": state,
            "items_total": total,
            "b_start": b_start,
            "b_size": b_size,
            "items": items,
            "batching": batching,
        }


class JobsPost(JobsService):
    """POST @zasync-jobs/<id>/retry or @zasync-jobs/<id>/cancel"""

    def reply(self):
        refused = self.not_json_nor_token()
        if refused is not None:
            return refused
        if len(self.params) != 2 or self.params[1] not in ("retry", "cancel"):
            return self.error(
                404, "NotFound", "POST @zasync-jobs/<id>/retry or @zasync-jobs/<id>/cancel; "
                "jobs cannot be created through the API.")
        job_id, action = self.params
        job = self.find(job_id)
        if job is None:
            return self.not_found(job_id)
        try:
            getattr(admin, action)(job)
        except admin.ActionError as exc:
            return self.error(400, "BadRequest", str(exc))
        return self.detail(job)


class JobsDelete(JobsService):
    """DELETE @zasync-jobs/<id> (one finished job) or @zasync-jobs?queue=&state= (all)"""

    def reply(self):
        # A form sends GET or POST only, and a DELETE from another origin needs a
        # CORS preflight: no cross-site request gets here (Volto sends no body).
        alsoProvides(self.request, IDisableCSRFProtection)
        if len(self.params) == 1:
            job = self.find(self.params[0])
            if job is None:
                return self.not_found(self.params[0])
            try:
                admin.remove(job)
            except admin.ActionError as exc:
                return self.error(400, "BadRequest", str(exc))
            return self.reply_no_content()
        if self.params:
            return self.error(404, "NotFound", "No such resource: %s." % "/".join(self.params))
        queue, state, error = self.queue_and_state(reading.FINISHED_STATES)
        if error is not None:
            return error
        removed = admin.remove_finished(queue, failed=state == "failed", site_path=self.site_path)
        return {"queue": queue.name, "state": state, "removed": removed}
