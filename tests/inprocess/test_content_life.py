"""Jobs follow the content's life: deleted contexts fail pending jobs at once; moves are followed."""

from collective.zasync.core.failure import Failure
from collective.zasync.core.queue import get_queue_root
from collective.zasync.plone.contentlife import ContentDeleted
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from datetime import datetime
from datetime import timezone
from plone import api
from tests.support import content_jobs
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase
from tests.support.base import WorkerTestCase

import transaction


LATER = datetime(2100, 1, 1, tzinfo=timezone.utc)


def make_content(portal):
    folder = api.content.create(container=portal, type="Folder", id="f", title="F")
    doc = api.content.create(container=folder, type="Document", id="doc", title="Doc")
    other = api.content.create(container=portal, type="Document", id="other", title="Other")
    return folder, doc, other


class TestDeletedContentWithoutWorker(OwnWorkerTestCase):
    """Jobs still in their inbox (no worker has filed them) fail with the delete."""

    def test_deleting_a_folder_fails_the_pending_and_delayed_jobs_inside_at_once(self):
        folder, doc, other = make_content(self.portal)
        pending = self.service.queueJob(content_jobs.mark, doc)
        delayed = self.service.queueJobWithDelay(None, LATER, content_jobs.mark, folder)
        by_argument = self.service.queueJob(content_jobs.paths, other, doc)  # doc passed by reference
        kept = self.service.queueJob(content_jobs.mark, other)
        transaction.commit()
        content_jobs.ran.clear()
        self.assertEqual(doc.UID(), pending.context_uid)

        api.content.delete(obj=folder, check_linkintegrity=False)
        transaction.commit()
        for job in (pending, delayed, by_argument):
            self.assertEqual(job.status, "completed-status")
            self.assertIsInstance(job.result, Failure)
            self.assertIs(job.result.type, ContentDeleted)
            self.assertIn("the content was deleted", str(job.result))
        self.assertEqual(kept.status, "pending-status")

        self.start_worker()
        wait_for_result(kept)
        queue = self.service.getQueues()[""]
        wait_until(lambda: queue.completed_count() == 1 and queue.failed_count() == 3, "filing")
        self.assertEqual(content_jobs.ran, [("mark", "/plone/other")])  # the deleted ones never ran
        self.assertEqual(len(queue), 0)
        self.assertEqual(sorted(j.id for j in queue.finished(failed=True)),
                         sorted(j.id for j in (pending, delayed, by_argument)))

    def test_moved_and_renamed_contexts_and_arguments_are_followed(self):
        folder, doc, other = make_content(self.portal)
        on_doc = self.service.queueJob(content_jobs.paths, doc, other)
        on_folder = self.service.queueJob(content_jobs.paths, folder)
        transaction.commit()
        # One request each, as on a site (the catalog keeps up with one move per transaction).
        api.content.rename(obj=doc, new_id="renamed")
        transaction.commit()
        api.content.move(source=other, target=folder)
        transaction.commit()
        api.content.rename(obj=folder, new_id="g")
        transaction.commit()
        self.assertEqual(on_doc.status, "pending-status")  # a move fails nothing
        self.start_worker()
        self.assertEqual(wait_for_result(on_doc), ["/plone/g/renamed", "/plone/g/other"])
        self.assertEqual(wait_for_result(on_folder), ["/plone/g"])


class TestDeletedContentWithWorker(WorkerTestCase):
    def test_a_filed_delayed_job_fails_with_the_delete_and_leaves_waiting(self):
        folder, doc, other = make_content(self.portal)
        delayed = self.service.queueJobWithDelay(None, LATER, content_jobs.mark, doc)
        recurring = self.service.queueRecurringJob(content_jobs.mark, doc, "0 3 * * *")
        transaction.commit()
        queue = self.service.getQueues()[""]
        wait_until(lambda: delayed.id in queue.jobs and recurring.id in queue.jobs, "filing")
        self.assertEqual(queue.waiting_count(), 2)
        api.content.delete(obj=doc, check_linkintegrity=False)
        transaction.commit()
        self.assertIn("the content was deleted: /plone/f/doc", str(delayed.result))
        self.assertIn("the content was deleted", str(recurring.result))
        self.assertTrue(recurring.recurrence.cancelled)
        self.assertEqual(queue.waiting_count(), 0)
        self.assertEqual(queue.failed_count(), 2)
        self.assertNotIn(recurring.recurrence.id, queue.recurring)

    def test_a_context_replaced_at_the_same_path_is_not_taken_for_it(self):
        folder, doc, other = make_content(self.portal)
        job = self.service.queueJob(content_jobs.paths, other)
        # The job is queued and deleted in one transaction with a new "other" in its place.
        api.content.delete(obj=other, check_linkintegrity=False)
        api.content.create(container=self.portal, type="Document", id="other", title="New")
        self.assertIn("the content was deleted", str(wait_for_result(job)))


class TestContentDeletion(OwnWorkerTestCase):

    def test_a_job_failed_in_its_inbox_is_listed_in_my_jobs(self):
        from collective.zasync.core.indexes import jobs_of_user

        api.content.create(self.portal, "Document", "doomed")
        transaction.commit()
        job = self.service.queueJob(sample_jobs.noop, self.portal["doomed"])
        transaction.commit()
        api.content.delete(self.portal["doomed"])
        transaction.commit()
        self.assertTrue(job.failed)
        self.start_worker()  # it reads the inbox, and passes the job over: it is finished
        root = get_queue_root(self.portal._p_jar)
        wait_until(lambda: not any(inbox.unread_count() for inbox in root.queues[""].inboxes.values()),
                   "the inbox read")
        self.assertIn(job, list(jobs_of_user(root, job.userfolder_path, job.user_id)))
