""""My jobs" (``@@zasync-my-jobs`` on the site) and an item's "Background jobs" (``@@zasync-jobs``).

My jobs lists the jobs the current user queued, newest first, 20 a page,
and lets them cancel their own pending jobs (a POST with plone.protect's
authenticator). An item's Background jobs lists the jobs that belong to it,
for users who may modify it. Only a user with "Manage portal" sees
arguments and tracebacks. Both pages refresh the rows of unfinished jobs
from their REST counterparts (static/myjobs.js). Jobs are found through the
indexes of indexes.py, never by a scan of the queues.
"""

from AccessControl import Unauthorized
from collective.zasync import actions
from collective.zasync import reading
from collective.zasync.browser.controlpanel import STATE_TITLES
from collective.zasync.browser.controlpanel import format_time
from collective.zasync.i18n import _
from collective.zasync.indexes import jobs_of_content
from collective.zasync.indexes import jobs_of_user
from collective.zasync.indexes import user_key
from collective.zasync.job import utcnow
from collective.zasync.security import capture_user
from plone import api
from plone.base.interfaces import IPloneSiteRoot
from plone.protect import CheckAuthenticator
from Products.Five.browser import BrowserView
from urllib.parse import urlencode
from zExceptions import Forbidden
from zope.i18n import translate

import json


def current_user_key():
    """(user folder path, user id) of the logged-in user; Unauthorized for Anonymous."""
    userfolder_path, user_id = capture_user()
    if user_id is None:
        raise Unauthorized("Log in to see your background jobs.")
    return userfolder_path, user_id


def may_manage(context):
    return api.user.has_permission("Manage portal", obj=context)


def own_job(job, key):
    """True if ``job`` was queued by the user ``key`` (see indexes.user_key), not by a deleted
    account of the same id."""
    return user_key(job) == key and not job.user_deleted


def content_jobs(root, context, key):
    """The jobs of the item ``context``, lazily; of the user ``key`` only on the site root.

    Every job queued without a content item has the site root as its context:
    who may modify the site root sees their own there, unless they have "Manage portal".
    """
    jobs = jobs_of_content(root, context)
    if IPloneSiteRoot.providedBy(context) and not may_manage(context):
        return (job for job in jobs if key is not None and own_job(job, key))
    return jobs


def cancel_own(root, job_id, key, site_path):
    """Cancel the pending job ``job_id`` of user ``key`` in the site ``site_path``;
    Forbidden (403) for another user's job."""
    job = actions.find_job(root.queues, job_id, site_path)
    if job is None or not own_job(job, key):
        # The same answer for someone else's job and for no job: ids are not revealed.
        raise Forbidden("You can cancel only your own background jobs.")
    actions.cancel(job)
    return job


def b_start_of(request):
    try:
        return max(int(request.form.get("b_start", 0)), 0)
    except (TypeError, ValueError):
        return 0


class JobListView(BrowserView):
    """The page both lists share: a page of jobs, with refresh from ``rest_name``."""

    page_size = reading.PERSONAL_PAGE_SIZE
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
        now = utcnow()
        jobs, more = reading.page(self.jobs(), b_start, self.page_size)
        size = self.page_size
        return {
            "jobs": [reading.personal_summary(job, full=full, own=self.own(job), now=now) for job in jobs],
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
            job = cancel_own(self.root, job_id, self.key, reading.site_path_of(self.context))
        except actions.ActionError as error:
            api.portal.show_message(str(error), self.request, type="error")
            return
        api.portal.show_message(_("Job ${id} was cancelled.", mapping={"id": job.id}), self.request)

    def jobs(self):
        return jobs_of_user(self.root, *self.key, site_path=reading.site_path_of(self.context))


class ContentJobsView(JobListView):
    """@@zasync-jobs on a content item: the jobs that belong to it (Modify portal content)."""

    title = _("Background jobs")
    description = _("Jobs queued on this item, or for it, by any user.")
    show_user = True
    rest_name = "@zasync-content-jobs"

    def __call__(self):
        userfolder_path, user_id = capture_user()
        self.key = (userfolder_path, user_id) if user_id is not None else None
        return self.index()

    def own(self, job):
        return self.key is not None and own_job(job, self.key)

    def jobs(self):
        return content_jobs(self.root, self.context, self.key)
