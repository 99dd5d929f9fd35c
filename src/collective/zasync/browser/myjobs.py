""""My jobs" (``@@zasync-my-jobs`` on the site) and an item's "Background jobs" (``@@zasync-jobs``).
Not for add-ons.

My jobs lists the jobs the current user queued, newest first, 20 a page,
and lets them cancel their own pending jobs (a POST with plone.protect's
authenticator). An item's Background jobs lists the jobs that belong to it,
for users who may modify it. Only a user with "Manage portal" sees
arguments and tracebacks. Both pages refresh the rows of unfinished jobs
from their REST counterparts (static/myjobs.js). What they list and who may see
it: client/personal.py, which restapi/personal.py shares.
"""

from collective.zasync.browser.controlpanel import format_time
from collective.zasync.browser.controlpanel import STATE_TITLES
from collective.zasync.client import admin
from collective.zasync.client import personal
from collective.zasync.client import reading
from collective.zasync.client.permissions import current_user_key
from collective.zasync.client.permissions import may_manage
from collective.zasync.client.permissions import own_job
from collective.zasync.client.sites import site_path_of
from collective.zasync.client.users import user_key_of_current_user
from collective.zasync.defaults import PERSONAL_PAGE_SIZE
from collective.zasync.i18n import _
from datetime import datetime
from datetime import timezone
from plone import api
from plone.protect import CheckAuthenticator
from Products.Five.browser import BrowserView
from urllib.parse import urlencode
from zExceptions import Forbidden
from zope.i18n import translate

import json


def b_start_of(request):
    try:
        return max(int(request.form.get("b_start", 0)), 0)
    except (TypeError, ValueError):
        return 0


class JobListView(BrowserView):
    """The page both lists share: a page of jobs, with refresh from ``rest_name``."""

    page_size = PERSONAL_PAGE_SIZE
    format_time = staticmethod(format_time)
    show_user = False
    rest_name = None

    @property
    def root(self):
        return reading.queue_root(self.context)

    def jobs(self):
        """The jobs, newest first, lazily."""
        raise NotImplementedError

    def own(self, job):
        return True

    def listing(self):
        b_start = b_start_of(self.request)
        full = may_manage(self.context)
        now = datetime.now(timezone.utc)
        jobs, more = reading.page(self.jobs(), b_start, self.page_size)
        size = self.page_size
        return {
            "jobs": [personal.personal_summary(job, full=full, own=self.own(job), now=now) for job in jobs],
            "full": full,
            "first": b_start + 1 if jobs else 0,
            "last": b_start + len(jobs),
            "previous": self.page_url(max(b_start - size, 0)) if b_start > 0 else None,
            "next": self.page_url(b_start + size) if more else None,
            "refresh_url": "%s/%s?%s" % (self.context.absolute_url(), self.rest_name,
                                         urlencode({"b_start": b_start})),
        }

    def page_url(self, b_start):
        return "%s/@@%s?%s" % (self.context.absolute_url(), self.__name__, urlencode({"b_start": b_start}))

    def panel_job_url(self, job_id):
        return "%s/@@zasync-job?%s" % (api.portal.get().absolute_url(), urlencode({"id": job_id}))

    def authenticator(self):
        return self.context.restrictedTraverse("@@authenticator").token()

    def script_url(self):
        return api.portal.get().absolute_url() + "/++resource++collective.zasync-myjobs.js"

    def state_title(self, state):
        return STATE_TITLES.get(state, state)

    def state_titles_json(self):
        """The translated state titles, for the script that refreshes the rows."""
        return json.dumps({state: translate(self.state_title(state), context=self.request)
                           for state in reading.STATES})

    def state_class(self, state):
        return {
            "pending": "text-bg-secondary",
            "delayed": "text-bg-info",
            "active": "text-bg-primary",
            "failed": "text-bg-danger",
            "completed": "text-bg-success",
        }.get(state, "text-bg-light")


class MyJobsView(JobListView):
    """@@zasync-my-jobs: the jobs the current user queued; cancel the pending ones."""

    title = _("My background jobs")
    description = _("The jobs you queued: pending, running and finished ones (kept for the retention).")
    rest_name = "@zasync-my-jobs"

    def __call__(self):
        self.key = current_user_key()
        if "zasync.action" in self.request.form:
            if self.request.method != "POST":
                raise Forbidden("Cancelling a job is a POST request.")
            CheckAuthenticator(self.request)  # Forbidden without a valid token
            self.cancel(self.request.form.get("job_id", ""))
            return self.request.response.redirect(self.page_url(b_start_of(self.request)))
        return self.index()

    def cancel(self, job_id):
        try:
            job = personal.cancel_own(self.root, job_id, self.key, site_path_of(self.context))
        except admin.ActionError as error:
            api.portal.show_message(str(error), self.request, type="error")
            return
        api.portal.show_message(_("Job ${id} was cancelled.", mapping={"id": job.id}), self.request)

    def jobs(self):
        return personal.my_jobs(self.root, self.context, self.key)


class ContentJobsView(JobListView):
    """@@zasync-jobs on a content item: the jobs that belong to it (Modify portal content)."""

    title = _("Background jobs")
    description = _("Jobs queued on this item, or for it, by any user.")
    show_user = True
    rest_name = "@zasync-content-jobs"

    def __call__(self):
        self.key = user_key_of_current_user()
        return self.index()

    def own(self, job):
        return self.key is not None and own_job(job, self.key)

    def jobs(self):
        return personal.content_jobs(self.root, self.context, self.key)
