"""@@zasync-demo: queue the example jobs and watch them complete; @@zasync-demo-job: one job by id.
Not for add-ons."""

from collective.zasync.client.lookup import get_job
from collective.zasync.client.lookup import get_progress
from collective.zasync.core.job import state_name
from collective.zasync.core.queue import get_queue_root
from collective.zasync.dev import examples
from collective.zasync.interfaces import IAsyncService
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone import api
from plone.protect import CheckAuthenticator
from Products.Five.browser import BrowserView
from zExceptions import BadRequest
from zope.component import getUtility

import itertools


class DemoView(BrowserView):
    """Buttons that queue example jobs, and the latest jobs of the default queue."""

    def __call__(self):
        if self.request.method == "POST":
            CheckAuthenticator(self.request)
            job = self.queue_example(self.request.form.get("example"))
            # A user who started an export watches that job: its page finds it again by id.
            return self.request.response.redirect(
                "%s/@@zasync-demo-job?id=%s" % (self.context.absolute_url(), job.id))
        return self.index()

    def queue_example(self, example):
        service = getUtility(IAsyncService)
        if example == "publish":
            stamp = datetime.now(timezone.utc).strftime("%H%M%S")
            document = api.content.create(
                container=self.context, type="Document", id="demo-%s" % stamp,
                title="Published by a background job (%s)" % stamp,
            )
            begin = datetime.now(timezone.utc) + timedelta(seconds=5)
            api.portal.show_message("Created %s; a job publishes it in 5 seconds." % document.getId(), self.request)
            return service.queueJobWithDelay(None, begin, examples.publish_later, document)
        if example == "count":
            api.portal.show_message("Queued a slow report; watch its progress below.", self.request)
            return service.queueJob(examples.count_content, self.context)
        raise BadRequest("Unknown example %r: 'publish' or 'count'." % example)

    def jobs(self):
        """The 15 latest jobs: pending, running and finished."""
        queue = getUtility(IAsyncService).getQueues()[""]
        active = [job for worker in self._workers() for job in worker.claimed.values()]
        latest = itertools.chain(
            itertools.islice(queue.pending(), 5), active, itertools.islice(queue.finished(), 10)
        )
        rows = []
        for job in itertools.islice(latest, 15):
            progress = get_progress(job)
            rows.append({
                "id": job.id,
                "what": job.describe(),
                "state": state_name(job),
                "result": "" if job.result is None else str(job.result),
                "progress": progress[0] if progress and progress[0] >= 0 else None,
                "user": job.user_id or "Anonymous",
            })
        return rows

    def _workers(self):
        return get_queue_root(self.context._p_jar).workers.values()

    def refresh(self):
        """Reload the page every 2 s while something is not finished."""
        return any(row["state"] in ("pending", "delayed", "active") for row in self.jobs())


class WatchJobView(BrowserView):
    """One job, found again by its id in a later request (api.get_job: the user's own, or a Manager's)."""

    def __call__(self):
        job_id = self.request.form.get("id", "")
        self.job = get_job(job_id) if job_id else None
        if self.job is None:
            self.request.response.setStatus(404)
        return self.index()

    def info(self):
        job = self.job
        progress = get_progress(job.id)  # by id, as a later request that kept only the id would
        return {
            "id": job.id,
            "what": job.describe(),
            "state": state_name(job),
            "progress": progress[0] if progress and progress[0] >= 0 else None,
            "data": progress[1] if progress else None,
            "result": "" if job.result is None else str(job.result),
            "finished": state_name(job) in ("completed", "failed"),
        }
