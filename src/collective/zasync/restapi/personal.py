"""plone.restapi services for users: their own jobs, and the jobs of a content item. Not for
add-ons (the services are the API).

    GET  @zasync-my-jobs?b_start=&b_size=        the current user's jobs, newest first
    POST @zasync-my-jobs/<id>/cancel             cancel one of their own pending jobs
    GET  <item>/@zasync-content-jobs?b_start=    the jobs that belong to an item (Modify portal content)

The same lists as the pages of browser/myjobs.py, which refresh from them (both read
client/personal.py). Only users with "Manage portal" get arguments and tracebacks.
"""

from collective.zasync.client import admin
from collective.zasync.client import personal
from collective.zasync.client import reading
from collective.zasync.client.permissions import current_user_key
from collective.zasync.client.permissions import may_manage
from collective.zasync.client.permissions import own_job
from collective.zasync.client.sites import site_path_of
from collective.zasync.client.users import user_key_of_current_user
from collective.zasync.defaults import MAX_PAGE_SIZE
from collective.zasync.defaults import PERSONAL_PAGE_SIZE
from collective.zasync.restapi.services import JobsService
from datetime import datetime
from datetime import timezone
from plone.restapi.services import Service
from urllib.parse import urlencode


class JobListGet(Service):
    """A page of jobs, with ``batching`` links as plone.restapi's listings have."""

    name = None

    def jobs(self):
        raise NotImplementedError

    def own(self, job):
        return True

    def url(self, **params):
        return "%s/%s?%s" % (self.context.absolute_url(), self.name, urlencode(params))

    def reply(self):
        try:
            b_start = max(int(self.request.form.get("b_start", 0)), 0)
            b_size = min(max(int(self.request.form.get("b_size", PERSONAL_PAGE_SIZE)), 1), MAX_PAGE_SIZE)
        except (TypeError, ValueError):
            self.request.response.setStatus(400)
            return {"error": {"type": "BadRequest", "message": "b_start and b_size are integers."}}
        full = may_manage(self.context)
        now = datetime.now(timezone.utc)
        jobs, more = reading.page(self.jobs(), b_start, b_size)
        items = []
        for job in jobs:
            item = reading.jsonable(personal.personal_summary(job, full=full, own=self.own(job), now=now))
            if item["cancellable"] and self.name == "@zasync-my-jobs":
                item["cancel"] = "%s/%s/%s/cancel" % (self.context.absolute_url(), self.name, job.id)
            items.append(item)
        batching = {"@id": self.url(b_start=b_start, b_size=b_size)}
        if b_start > 0:
            batching["prev"] = self.url(b_start=max(b_start - b_size, 0), b_size=b_size)
        if more:
            batching["next"] = self.url(b_start=b_start + b_size, b_size=b_size)
        return {"@id": batching["@id"], "b_start": b_start, "b_size": b_size,
                "items": items, "batching": batching}


class MyJobsGet(JobListGet):
    """GET @zasync-my-jobs"""

    name = "@zasync-my-jobs"

    def jobs(self):
        return personal.my_jobs(reading.queue_root(self.context), self.context, current_user_key())


class MyJobsPost(JobsService):
    """POST @zasync-my-jobs/<id>/cancel"""

    def reply(self):
        refused = self.not_json_nor_token()
        if refused is not None:
            return refused
        if len(self.params) != 2 or self.params[1] != "cancel":
            return self.error(404, "NotFound", "POST @zasync-my-jobs/<id>/cancel.")
        root = reading.queue_root(self.context)
        try:
            job = personal.cancel_own(root, self.params[0], current_user_key(), site_path_of(self.context))
        except admin.ActionError as exc:
            return self.error(400, "BadRequest", str(exc))
        return reading.jsonable(personal.personal_summary(job, full=may_manage(self.context)))


class ContentJobsGet(JobListGet):
    """GET <item>/@zasync-content-jobs"""

    name = "@zasync-content-jobs"

    def jobs(self):
        return personal.content_jobs(reading.queue_root(self.context), self.context, user_key_of_current_user())

    def own(self, job):
        key = user_key_of_current_user()
        return key is not None and own_job(job, key)
