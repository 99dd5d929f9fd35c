"""An item's Background jobs (@@zasync-jobs, @zasync-content-jobs) over real HTTP, about=,
and what a job's transaction says in the Undo log (and that undoing it works)."""

from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.plone.queuedb import QueueDatabase
from collective.zasync.interfaces import ACTIVE
from collective.zasync.interfaces import COMPLETED
from collective.zasync.interfaces import IQueueDatabase
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.worker.settings import WorkerSettings
from persistent.mapping import PersistentMapping
from plone import api
from plone.app.testing import TEST_USER_ID
from plone.dexterity.utils import createContent
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase
from tests.web.test_my_jobs import MyJobsTestCase
from tests.web.test_my_jobs import rows
from ZODB.DB import DB
from ZODB.DemoStorage import DemoStorage
from ZODB import POSException
from ZODB.FileStorage import FileStorage
from ZODB.MappingStorage import MappingStorage
from zope.component import getGlobalSiteManager
from zope.component import provideUtility
from zope.component.hooks import getSite
from zope.component.hooks import setSite

import os
import shutil
import tempfile
import transaction


def set_description(context, text):
    """A job that changes one attribute of its context (no catalog: a small undoable commit)."""
    context.description = text
    return text


class TestContentJobs(MyJobsTestCase):
    def setUp(self):
        super().setUp()
        self.doc = api.content.create(self.portal, "Document", id="doc", title="Doc")
        self.other = api.content.create(self.portal, "Document", id="other", title="Other")
        transaction.commit()

    def test_editors_see_the_jobs_of_an_item_members_do_not(self):
        mine = self.service.queueJob(sample_jobs.add, self.doc, 1)  # (the test user: a Manager)
        failed = self.service.queueJob(sample_jobs.fail, self.doc, "no PDF for you")
        about = self.queue_as("member", sample_jobs.add, 2, about=self.doc)  # context: the site
        elsewhere = self.service.queueJob(sample_jobs.add, self.other, 3)
        for job in (mine, failed, about, elsewhere):
            wait_for_result(job)
        self.wait_filed(lambda queue: queue.completed_count() + queue.failed_count() == 4)

        page = self.get_page("doc/@@zasync-jobs", "editor")
        listed = rows(page)
        self.assertEqual(list(listed), [about.id, failed.id, mine.id])  # newest first
        self.assertEqual(listed[about.id].xpath('.//*[@class="zasync-user"]')[0].text, "member")
        self.assertIn("for /plone/doc", listed[about.id].text_content())
        self.assertEqual(listed[failed.id].xpath('.//*[contains(@class, "zasync-error")]')[0].text,
                         "ValueError: no PDF for you")
        self.assertIsNone(listed[mine.id].xpath('.//*[@class="zasync-result"]')[0].text,
                          "someone else's result is not shown")
        self.assertNotIn("Traceback", page.text_content())
        self.assertEqual(list(rows(self.get_page("other/@@zasync-jobs", "editor"))), [elsewhere.id])

        for user in ("anonymous", "member"):
            response = self.session(user).get(self.url("doc/@@zasync-jobs"), allow_redirects=False)
            self.assertNotEqual(response.status_code, 200, user)
            self.assertNotIn(failed.id, response.text)
            status, data = self.api("GET", "doc/@zasync-content-jobs", user)
            self.assertEqual(status, 401, user)

        status, data = self.api("GET", "doc/@zasync-content-jobs", "editor")
        self.assertEqual([item["id"] for item in data["items"]], [about.id, failed.id, mine.id])
        self.assertNotIn("traceback", data["items"][1])
        status, data = self.api("GET", "doc/@zasync-content-jobs", "manager")
        self.assertIn("Traceback (most recent call last)", data["items"][1]["traceback"])
        self.assertEqual(data["items"][2]["args"], ["1"])

    def test_the_actions_menu_links_to_background_jobs_for_editors(self):
        link = '//a[contains(@href, "/doc/@@zasync-jobs")]'
        links = self.get_page("doc", "editor").xpath(link)
        self.assertTrue(links, "no Background jobs in the Actions menu")
        self.assertIn("Background jobs", links[0].text_content())
        self.assertFalse(self.get_page("doc", "member").xpath(link))

    def test_jobs_stay_listed_when_the_item_is_renamed_or_moved(self):
        job = self.service.queueJob(sample_jobs.add, self.doc, 1)
        wait_for_result(job)
        self.wait_filed(lambda queue: queue.completed_count() == 1)
        folder = api.content.create(self.portal, "Folder", id="folder")
        api.content.move(self.doc, folder, id="renamed")
        transaction.commit()
        self.assertEqual(list(rows(self.get_page("folder/renamed/@@zasync-jobs", "editor"))), [job.id])

    def test_about_is_checked_at_queue_time(self):
        with self.assertRaisesRegex(ValueError, "persistent object inside a Plone site"):
            self.service.queueJob(sample_jobs.add, self.portal, 1, about=PersistentMapping())
        new = createContent("Document", title="New").__of__(self.portal)  # not added yet
        with self.assertRaisesRegex(ValueError, "not stored in the database yet"):
            self.service.queueJob(sample_jobs.add, self.portal, 1, about=new)


class TestJobTransactions(OwnWorkerTestCase):
    """A job's commit says which job, which function, which user; it can be undone.

    The layer's storage cannot undo: the layer's site is opened again over a
    FileStorage, which can. (The layer's worker is stopped: the multi-database
    test registers the queue database globally.)
    """

    def setUp(self):
        super().setUp()
        for doc_id in ("first", "second"):
            api.content.create(self.portal, "Document", id=doc_id, title=doc_id)
        transaction.commit()
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)

    def open_site(self, queue_database=None):
        """(main db, transaction manager, site) over a FileStorage; the queue in ``queue_database`` if given."""
        databases = {}
        changes = FileStorage(os.path.join(self.tmp, "Data.fs"))
        db = DB(DemoStorage(base=self.layer["zodbDB"].storage, changes=changes),
                databases=databases, database_name="main")
        if queue_database is not None:
            DB(MappingStorage(), databases=databases, database_name=queue_database)
        manager = transaction.TransactionManager()
        conn = db.open(transaction_manager=manager)
        self.addCleanup(lambda: [database.close() for database in list(databases.values())])
        self.addCleanup(conn.close)
        self.addCleanup(manager.abort)
        portal = conn.root()["Application"].plone
        for doc_id in ("first", "second"):
            portal[doc_id].description = "before"  # their earlier state in the FileStorage
        manager.commit()
        return db, manager, portal

    def run_jobs(self, db, manager, portal):
        """Run a job on each document, one after the other, in one worker thread."""
        jobs = []
        worker = Dispatcher(db, "00000000-0000-0000-0000-0000000undo", WorkerSettings(
            threads=1, poll_interval=0.2, ping_interval=1.0, death_interval=30.0,
            max_retries=3, stop_timeout=10.0))
        worker.start()
        try:
            for doc_id in ("first", "second"):
                layer_site = getSite()
                setSite(portal)
                try:
                    job = self.service.queueJob(set_description, portal[doc_id], "written by a job")
                finally:
                    setSite(layer_site)
                manager.commit()
                wait_until(lambda: manager.begin() is not None and job.status == COMPLETED, job.id)
                jobs.append(job)
        finally:
            worker.stop()
        manager.begin()
        return jobs

    def undo_entry(self, db, job):
        [entry] = [entry for entry in db.undoLog(0, 50) if job.id in entry["description"]]
        return entry

    def undo(self, db, manager, job):
        db.undo(self.undo_entry(db, job)["id"], manager.get())
        manager.commit()
        manager.begin()

    def test_undo_log_names_the_job_and_its_user_and_undo_works(self):
        db, manager, portal = self.open_site()
        first, second = self.run_jobs(db, manager, portal)
        self.assertEqual(portal.second.description, "written by a job")
        entry = self.undo_entry(db, second)
        self.assertEqual(
            entry["description"],
            "collective.zasync job %s: tests.web.test_content_jobs.set_description on /plone/second" % second.id)
        self.assertEqual(entry["user_name"], "plone %s" % TEST_USER_ID)  # as Zope notes a request's

        # In the queue, a job's commit writes only the job: any job can be undone on
        # its own, the earlier one first too. With the queue in the site's database,
        # the job's outcome is part of that transaction and is taken back with it.
        self.undo(db, manager, first)
        self.assertEqual((portal.first.description, portal.second.description), ("before", "written by a job"))
        self.assertEqual(first.status, ACTIVE)
        self.undo(db, manager, second)
        self.assertEqual(portal.second.description, "before")

    def test_with_the_queue_in_its_own_database_any_job_can_be_undone(self):
        provideUtility(QueueDatabase("async"), IQueueDatabase)
        try:
            db, manager, portal = self.open_site(queue_database="async")
            first, second = self.run_jobs(db, manager, portal)
        finally:
            getGlobalSiteManager().unregisterUtility(provided=IQueueDatabase)
        self.assertEqual(first._p_jar.db().database_name, "async")
        self.assertEqual(self.undo_entry(db, first)["user_name"], "plone %s" % TEST_USER_ID)
        self.undo(db, manager, first)  # the site's database: only the job's own work
        self.assertEqual((portal.first.description, portal.second.description), ("before", "written by a job"))
        self.assertEqual(first.status, COMPLETED)  # the queue's database keeps the job's outcome
