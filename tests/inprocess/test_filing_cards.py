"""Filing cards (core/cards.py): a plain job is filed from the card its request stored, unloaded.

No worker runs: the test plays the finisher's pass with a connection of its own, whose
cache starts empty, as a worker process's does.
"""

from collective.zasync.client import admin
from collective.zasync.core import queue as queue_module
from collective.zasync.core.indexes import item_key
from collective.zasync.core.indexes import newest_first_key
from collective.zasync.core.indexes import user_key
from collective.zasync.core.keys import waiting_key
from collective.zasync.core.queue import get_queue_root
from collective.zasync.core.uidindex import job_uids
from collective.zasync.core.uidindex import pending_jobs
from collective.zasync.worker import filing
from plone import api
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase
from unittest import mock

import transaction


class TestFilingCards(OwnWorkerTestCase):

    def setUp(self):
        super().setUp()
        self.doc = api.content.create(container=self.portal, type="Document", id="carded", title="Carded")
        transaction.commit()

    def finisher(self):
        """(transaction manager, queue) of a dispatcher's connection, nothing loaded yet."""
        tm = transaction.TransactionManager()
        conn = self.layer["zodbDB"].open(transaction_manager=tm)
        self.addCleanup(conn.close)
        self.addCleanup(tm.abort)
        conn.cacheMinimize()
        return tm, get_queue_root(conn).queues[""]

    def file(self):
        """One finisher's pass over the inboxes; the jobs it read, as that connection has them."""
        tm, queue = self.finisher()
        read = [job for inbox in queue.inboxes.values() for _key, job in inbox.unread()]
        filing.file_inboxes(queue)
        tm.commit()
        return queue, read

    def test_a_plain_job_is_filed_from_its_card_without_being_loaded(self):
        job = self.service.queueJob(sample_jobs.set_title, self.doc, "T", priority=3)
        transaction.commit()
        queue, [read] = self.file()
        self.assertIsNone(read._p_changed, "filing loaded the job")
        # Filed where, and listed as, filing the loaded job files and lists it.
        self.assertEqual(list(queue.prioritized[3].items()), [(waiting_key(job), read)])
        self.assertIs(queue.jobs[job.id], read)
        self.assertEqual(queue.waiting_count(), 1)
        for index, key in (("by_user", user_key(job)), ("by_item", item_key(job)), ("by_site", job.site_path)):
            self.assertEqual(list(getattr(queue, index)[key].items()), [(newest_first_key(job), read)], index)
        self.assertEqual(job_uids(job), [self.doc.UID()])
        self.assertEqual(list(queue.by_uid.keys()), ["%s %s" % (self.doc.UID(), job.id)])
        transaction.begin()
        self.assertEqual(pending_jobs(self.service.getQueues()[""], self.doc.UID()), [job])

    def test_a_job_cancelled_and_removed_before_it_was_filed_stays_removed(self):
        job = self.service.queueJob(sample_jobs.set_title, self.doc, "T")
        transaction.commit()
        admin.cancel(job)  # still in its inbox: it ends, filed as finished by the cancel
        transaction.commit()
        queue = self.service.getQueues()[""]
        self.assertEqual(list(queue.ended_unfiled), [job.id])
        admin.remove(job)
        transaction.commit()
        queue, [read] = self.file()  # its card says "waiting": filing must not believe it
        self.assertEqual((len(queue.jobs), len(queue.waiting), queue.waiting_count()), (0, 0, 0))
        self.assertEqual([len(getattr(queue, index)) for index in ("by_user", "by_item", "by_site", "by_uid")],
                         [0, 0, 0, 0])
        self.assertEqual(list(queue.ended_unfiled), [])  # read: nothing kept for it

    def test_a_job_cancelled_before_it_was_filed_is_filed_once(self):
        job = self.service.queueJob(sample_jobs.set_title, self.doc, "T")
        transaction.commit()
        admin.cancel(job)
        transaction.commit()
        queue, [read] = self.file()
        self.assertEqual((list(queue.failed.values()), len(queue.waiting)), ([read], 0))  # (cancelled: failed)
        self.assertEqual(list(queue.ended_unfiled), [])

    def test_a_job_queued_without_a_card_is_loaded_and_filed(self):
        # (an inbox entry of an earlier version; a batch, a job with dependencies or a recurrence)
        with mock.patch.object(queue_module, "card_of", lambda job, key: None):
            job = self.service.queueJob(sample_jobs.set_title, self.doc, "T")
            transaction.commit()
        queue, [read] = self.file()
        self.assertIsNotNone(read._p_changed, "filed without its card: loaded")
        self.assertEqual(list(queue.waiting.items()), [(waiting_key(job), read)])
        self.assertEqual(list(queue.by_uid.keys()), ["%s %s" % (self.doc.UID(), job.id)])

    def test_the_writer_prunes_a_read_entry_without_loading_its_job(self):
        first_id = self.service.queueJob(sample_jobs.set_title, self.doc, "T").id
        transaction.commit()
        self.file()
        transaction.begin()
        self.portal._p_jar.cacheMinimize()  # (a request of another moment: the job is not loaded)
        [inbox] = self.service.getQueues()[""].inboxes.values()
        [(stored, _card)] = inbox.entries.values()
        self.assertEqual((len(inbox.uids), inbox.unread()), (1, []))
        inbox.prune()  # (what its writer does every PRUNE_EVERY appends)
        second = self.service.queueJob(sample_jobs.set_title, self.doc, "U")
        self.assertEqual(list(inbox.entries.keys()), [second.id])
        self.assertNotIn(first_id, inbox.entries)
        self.assertEqual(list(inbox.uids), ["%s %s" % (self.doc.UID(), second.id)])
        self.assertIsNone(stored._p_changed, "pruning loaded the job")
        transaction.commit()
