"""An item's Background jobs (@@zasync-jobs, @zasync-content-jobs) over real HTTP, about=,
and what a job's transaction says in the Undo log (and that undoing it works)."""

from collective.zasync.dispatcher import Dispatcher
from collective.zasync.interfaces import COMPLETED
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.worker import WorkerSettings
from persistent.mapping import PersistentMapping
from plone import api
from plone.app.testing import TEST_USER_ID
from plone.dexterity.utils import createContent
from tests import sample_jobs
from tests.base import WorkerTestCase
from tests.test_my_jobs import MyJobsTestCase
from tests.test_my_jobs import rows
from ZODB.DB import DB
from ZODB.DemoStorage import DemoStorage
from ZODB.FileStorage import FileStorage
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


class TestJobTransactions(WorkerTestCase):
    """A job's commit says which job, which function, which user; it can be undone."""

    def test_undo_log_names_the_job_and_its_user_and_undo_works(self):
        api.content.create(self.portal, "Document", id="undoable", title="Undoable")
        transaction.commit()
        # The layer's storage cannot undo: a FileStorage over it can.
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        db = DB(DemoStorage(base=self.layer["zodbDB"].storage,
                            changes=FileStorage(os.path.join(tmp, "Data.fs"))))
        self.addCleanup(db.close)
        manager = transaction.TransactionManager()
        conn = db.open(transaction_manager=manager)
        self.addCleanup(conn.close)
        portal = conn.root()["Application"].plone
        portal.undoable.description = "before"  # its earlier state in the FileStorage
        manager.commit()
        layer_site = getSite()
        setSite(portal)
        try:
            job = self.service.queueJob(set_description, portal.undoable, "written by a job")
        finally:
            setSite(layer_site)
        manager.commit()

        worker = Dispatcher(db, "00000000-0000-0000-0000-0000000undo", WorkerSettings(
            threads=1, poll_interval=0.2, ping_interval=1.0, death_interval=30.0,
            max_retries=3, stop_timeout=10.0))

        def completed():
            manager.begin()  # see what the worker committed
            return job.status == COMPLETED

        worker.start()
        try:
            wait_until(completed, "the job in the FileStorage database")
        finally:
            worker.stop()
        manager.begin()
        self.assertEqual(portal.undoable.description, "written by a job")

        [entry] = [entry for entry in db.undoLog(0, 20) if job.id in entry["description"]]
        self.assertEqual(
            entry["description"],
            "collective.zasync job %s: tests.test_content_jobs.set_description on /plone/undoable" % job.id)
        self.assertEqual(entry["user_name"], "plone %s" % TEST_USER_ID)  # as Zope notes a request's

        db.undo(entry["id"], manager.get())
        manager.commit()
        manager.begin()
        self.assertEqual(portal.undoable.description, "before")
