"""Site Setup > Background jobs: queues, jobs, workers; retry, cancel, remove. Not for add-ons.

``@@zasync-controlpanel`` shows every queue with its counts, the recurring
jobs and the workers; with ``?queue=NAME&state=STATE`` it also lists that
queue's jobs in that state, 50 a page (``b_start``). ``@@zasync-job?id=ID``
shows one job. Every action is a POST to ``@@zasync-controlpanel`` carrying
plone.protect's authenticator; anything else changes nothing. (The settings form,
``@@zasync-settings``, is Plone glue: plone/controlpanel.py.)
"""

from collective.zasync.client import admin
from collective.zasync.client import reading
from collective.zasync.client.permissions import check_database_change
from collective.zasync.client.permissions import may_change_database
from collective.zasync.client.sites import site_path_of
from collective.zasync.defaults import PAGE_SIZE
from collective.zasync.i18n import _
from collective.zasync.interfaces import IAsyncService
from datetime import datetime
from datetime import timezone
from plone import api
from plone.protect import CheckAuthenticator
from Products.Five.browser import BrowserView
from urllib.parse import urlencode
from zExceptions import BadRequest
from zExceptions import Forbidden
from zExceptions import NotFound
from zope.component import getUtility


ACTIONS = ("retry", "cancel", "remove", "remove-all", "cancel-recurring", "retry-set-aside",
           "remove-set-aside")


def format_time(when):
    """An aware datetime as 'YYYY-MM-DD HH:MM:SS UTC' (empty for None)."""
    if when is None:
        return ""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# The title of each state (core.job.state_name) in the panel and on "My jobs".
STATE_TITLES = {
    "pending": _("Pending"),
    "delayed": _("Delayed"),
    "active": _("Active"),
    "failed": _("Failed"),
    "completed": _("Completed"),
    "new": _("New"),
    "unloadable": _("Cannot be loaded"),  # (its class changed since: client/reading.py)
}


class BaseView(BrowserView):
    """Helpers shared by the panel and the job page."""

    format_time = staticmethod(format_time)

    @property
    def root(self):
        return reading.queue_root(self.context)

    @property
    def site_path(self):
        """This site's path: the panel shows and steers this site's jobs only."""
        return site_path_of(self.context)

    def panel_url(self, **params):
        url = self.context.absolute_url() + "/@@zasync-controlpanel"
        params = {key: value for key, value in params.items() if value is not None}
        return url + ("?" + urlencode(params) if params else "")

    def job_url(self, job_id):
        return self.context.absolute_url() + "/@@zasync-job?" + urlencode({"id": job_id})

    def authenticator(self):
        return self.context.restrictedTraverse("@@authenticator").token()

    def queue_title(self, name):
        return name if name else _("(default queue)")

    def state_title(self, state):
        return STATE_TITLES.get(state, state)

    def state_class(self, state):
        return {
            "pending": "text-bg-secondary",
            "delayed": "text-bg-info",
            "active": "text-bg-primary",
            "failed": "text-bg-danger",
            "completed": "text-bg-success",
        }.get(state, "text-bg-light")


class ControlPanelView(BaseView):
    """@@zasync-controlpanel"""

    page_size = PAGE_SIZE

    def __call__(self):
        form = self.request.form
        if "zasync.action" in form:
            if self.request.method != "POST":
                raise Forbidden("Background job actions are POST requests only.")
            CheckAuthenticator(self.request)  # raises Forbidden without a valid token
            return self.request.response.redirect(self.do_action(form))
        self.now = datetime.now(timezone.utc)
        return self.index()

    # -- actions -----------------------------------------------------------

    def do_action(self, form):
        """Run the posted action, show what happened; return where to go next."""
        action = form.get("zasync.action")
        queue_name = form.get("queue")
        state = form.get("state") or None
        back = self.panel_url(queue=queue_name, state=state) if state else self.panel_url()
        queues = self.root.queues
        if action not in ACTIONS:
            raise BadRequest("Unknown action %r." % action)
        try:
            if action == "remove-all":
                if queue_name not in queues or state not in reading.FINISHED_STATES:
                    raise admin.ActionError("Only all failed or all completed jobs of a queue can be removed.")
                count = admin.remove_finished(queues[queue_name], failed=state == "failed",
                                                site_path=self.site_path)
                api.portal.show_message(
                    _("Removed ${count} ${state} jobs.", mapping={"count": count, "state": state}),
                    self.request,
                )
                return back
            if action in ("retry-set-aside", "remove-set-aside"):
                return self.act_on_set_aside(action, form.get("key", ""), back)
            if action == "cancel-recurring":
                recurrence = reading.find_recurrence(self.root, form.get("recurrence_id", ""), self.site_path)
                if recurrence is None:
                    raise admin.ActionError("There is no recurring job %r." % form.get("recurrence_id"))
                getUtility(IAsyncService).cancelRecurringJob(recurrence)
                api.portal.show_message(_("The recurring job was cancelled."), self.request)
                return back
            job = admin.find_job(queues, form.get("job_id", ""), self.site_path)
            if job is None:
                raise admin.ActionError("There is no job %r." % form.get("job_id"))
            if action == "retry":
                admin.retry(job)
                message = _("Job ${id} was queued again.", mapping={"id": job.id})
            elif action == "cancel" and reading.state_name(job) == "active":
                admin.cancel(job)
                message = _("Job ${id} was asked to stop: it ends at its next progress report "
                            "or check for cancelling.", mapping={"id": job.id})
            elif action == "cancel":
                admin.cancel(job)
                message = _("Job ${id} was cancelled.", mapping={"id": job.id})
            else:
                admin.remove(job)
                api.portal.show_message(_("Job ${id} was removed.", mapping={"id": job.id}), self.request)
                return back
            api.portal.show_message(message, self.request)
            if form.get("next") == "job":
                return self.job_url(job.id)
            return back
        except admin.ActionError as error:
            api.portal.show_message(str(error), self.request, type="error")
            return back

    def act_on_set_aside(self, action, key, back):
        """Retry or remove a job set aside (core/setaside.py): the Zope root's Manager only, since
        a job that cannot be loaded cannot tell which site it belongs to."""
        check_database_change(self.context, "A job set aside")
        if key not in {row[0] for row in reading.set_aside(self.root)}:
            raise admin.ActionError("There is no job set aside with the key %r." % key)
        if action == "retry-set-aside":
            job = admin.retry_set_aside(self.root, key)
            message = _("Job ${id} can be loaded again: it is queued again.", mapping={"id": job.id})
        else:
            admin.remove_set_aside(self.root, key)
            message = _("The job set aside was removed.")
        api.portal.show_message(message, self.request)
        return back

    # -- what the page shows -----------------------------------------------

    def set_aside(self):
        """The jobs set aside, for the Zope root's Manager (else an empty list)."""
        if not may_change_database(self.context):
            return []
        return [{"key": key, "job_id": job_id or "?", "error": reading.truncate(error),
                 "when": when, "where": where}
                for key, job_id, error, when, where in reading.set_aside(self.root)]


    def settings_url(self):
        return self.context.absolute_url() + "/@@zasync-settings"

    def queues(self):
        rows = []
        for name, queue in self.root.queues.items():
            counts = reading.queue_counts(self.root, queue, self.now, self.site_path)
            rows.append({
                "name": name,
                "title": self.queue_title(name),
                "counts": [
                    {"state": state, "title": self.state_title(state), "count": counts[state],
                     "url": self.panel_url(queue=name, state=state)}
                    for state in reading.STATES
                ],
                "rate_limits": [dict(limit, name=limit_name, per="%g" % limit["per"]) for limit_name, limit
                                in sorted(reading.rate_limits_info(queue).items())],
            })
        return rows

    def recurring(self):
        rows = []
        for name, queue in self.root.queues.items():
            for recurrence in reading.recurrences(queue, self.site_path):
                info = reading.recurrence_info(recurrence)
                info["queue_title"] = self.queue_title(name)
                info["queue"] = name
                rows.append(info)
        return rows

    def workers(self):
        return [reading.worker_info(worker) for worker in self.root.workers.values()]

    # -- the job list ------------------------------------------------------

    def selected(self):
        """(queue name, state) of the job list asked for, or None."""
        name, state = self.request.form.get("queue"), self.request.form.get("state")
        if name is None or state not in reading.STATES:
            return None
        if name not in self.root.queues:
            return None
        return name, state

    def b_start(self):
        try:
            return max(int(self.request.form.get("b_start", 0)), 0)
        except (TypeError, ValueError):
            return 0

    def job_list(self):
        """The page of jobs asked for (None: none), with its batch navigation."""
        if self.selected() is None:
            return None
        name, state = self.selected()
        queue = self.root.queues[name]
        b_start = self.b_start()
        size = PAGE_SIZE
        jobs, more = reading.page(reading.jobs_in_state(self.root, queue, state, self.now, self.site_path),
                                  b_start, size)
        total = reading.queue_counts(self.root, queue, self.now, self.site_path)[state]
        return {
            "queue": name,
            "queue_title": self.queue_title(name),
            "state": state,
            "state_title": self.state_title(state),
            "jobs": [reading.job_summary(job, self.now) for job in jobs],
            "first": b_start + 1 if jobs else 0,
            "last": b_start + len(jobs),
            "total": max(total, b_start + len(jobs)),
            "previous": self.panel_url(queue=name, state=state, b_start=max(b_start - size, 0))
            if b_start > 0 else None,
            "next": self.panel_url(queue=name, state=state, b_start=b_start + size) if more else None,
            "removable": state in reading.FINISHED_STATES,
        }


class JobView(BaseView):
    """@@zasync-job?id=ID: one job, with arguments, result and traceback."""

    def __call__(self):
        job_id = self.request.form.get("id", "")
        job = admin.find_job(self.root.queues, job_id, self.site_path) if job_id else None
        if job is None:
            raise NotFound("There is no background job %r." % job_id)
        self.job = reading.job_detail(job)
        return self.index()

    def back_url(self):
        return self.panel_url(queue=self.job["queue"], state=self.job["state"])
