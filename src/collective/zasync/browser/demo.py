"""@@zasync-demo: queue the example jobs and watch them complete."""

from collective.zasync import examples
from collective.zasync.actions import state_of
from collective.zasync.interfaces import IAsyncService
from collective.zasync.progress import get_progress
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone import api
from plone.protect import CheckAuthenticator
from Products.Five.browser import BrowserView
from zope.component import getUtility

import itertools


class DemoView(BrowserView):
    """Buttons that queue example jobs, and the latest jobs of the default queue."""

    def __call__(self):
        if self.request.method == "POST":
            CheckAuthenticator(self.request)
            self.queue_example(self.request.form.get("example"))
            return self.request.response.redirect(self.context.absolute_url() + "/@@zasync-demo")
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
            service.queueJobWithDelay(None, begin, examples.publish_later, document)
            api.portal.show_message("Created %s; a job publishes it in 5 seconds." % document.getId(), self.request)
        elif example == "count":
            service.queueJob(examples.count_content, self.context)
            api.portal.show_message("Queued a slow report; watch its progress below.", self.request)

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
                "state": state_of(job),
                "result": "" if job.result is None else str(job.result),
                "progress": progress[0] if progress and progress[0] >= 0 else None,
                "user": job.user_id or "Anonymous",
            })
        return rows

    def _workers(self):
        from collective.zasync.queue import get_queue_root

        return get_queue_root(self.context._p_jar).workers.values()

    def refresh(self):
        """Reload the page every 2 s while something is not finished."""
        return any(row["state"] in ("pending", "delayed", "active") for row in self.jobs())
