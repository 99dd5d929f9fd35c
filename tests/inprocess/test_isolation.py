"""Sites sharing a queue database, and users sharing a site, never reach each other's jobs.

In-process, on two Plone sites in one database (tests/support/sites.py) with a worker:
unique keys are scoped to the site and the queuing user; lookups by id are
checked; each site's readers (panel data, CLI, metrics) see that site's jobs only.
"""

from AccessControl import getSecurityManager
from collective.zasync.client import admin
from collective.zasync import api as api_module
from collective.zasync.client import cli
from collective.zasync.core import indexes
from collective.zasync.core.failure import Failure
from collective.zasync.core.indexes import jobs_of_content
from collective.zasync.core.indexes import jobs_of_user
from collective.zasync.interfaces import IAsyncService
from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.core.job import state_name
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from plone import api
from plone.dexterity.utils import createContent
from plone.app.testing import login
from plone.app.testing import SITE_OWNER_NAME
from tests.support import sample_jobs
from tests.support.sites import OTHER_MANAGER
from tests.support.sites import TWO_SITES_FUNCTIONAL
from zope.component import getUtility
from zope.component.hooks import setSite

import contextlib
import io
import json
import transaction
import unittest


def who_called_back(result):
    """A callback: the user it runs as."""
    return getSecurityManager().getUser().getId()


class TwoSitesTestCase(unittest.TestCase):
    layer = TWO_SITES_FUNCTIONAL

    def setUp(self):
        self.app = self.layer["app"]
        self.portal = self.layer["portal"]
        self.other = self.app["plone2"]
        self.service = getUtility(IAsyncService)
        self.as_user(self.portal, SITE_OWNER_NAME)
        held = self.service.createQueue("held")  # a quota of 0 keeps its jobs pending
        held.quotas["none"] = 0
        transaction.commit()

    def tearDown(self):
        setSite(self.portal)

    def as_user(self, site, name):
        """Log in as ``name`` in ``site`` (the Zope root's user folder for the owner); set the site."""
        setSite(site)
        login(self.app if name == SITE_OWNER_NAME else site, name)

    def queue_held(self, site, user, *args, **kwargs):
        """A job of ``user`` in ``site`` that stays pending (the held queue)."""
        self.as_user(site, user)
        return self.service.queueJobInQueue("held", ("none",), sample_jobs.add, site, *args, **kwargs)


class TestUniqueKeys(TwoSitesTestCase):
    def test_another_user_never_gets_my_job(self):
        mine = self.queue_held(self.portal, "member", 1, unique_key="k")
        theirs = self.queue_held(self.portal, "editor", 1, unique_key="k")
        self.assertIsNot(theirs, mine)
        self.assertEqual((mine.user_id, theirs.user_id), ("member", "editor"))
        self.assertIs(self.queue_held(self.portal, "member", 1, unique_key="k"), mine, "mine again")

    def test_a_callback_added_by_another_user_never_runs_as_me(self):
        self.as_user(self.portal, "manager")
        managers = self.service.queueJob(sample_jobs.add, self.portal, 1, unique_key="report")
        self.as_user(self.portal, "member")
        members = self.service.queueJob(sample_jobs.add, self.portal, 1, unique_key="report")
        callback = members.addCallback(sample_jobs.record_callback)
        self.assertEqual(callback.user_id, "member")
        self.assertNotIn(callback, managers.callbacks)

    def test_the_same_key_in_two_sites_is_two_jobs(self):
        here = self.queue_held(self.portal, SITE_OWNER_NAME, 1, unique_key="nightly")
        there = self.queue_held(self.other, SITE_OWNER_NAME, 1, unique_key="nightly")
        self.assertIsNot(there, here)
        self.assertEqual((here.site_path, there.site_path), ("/plone", "/plone2"))

    def test_a_site_wide_key_gives_no_handle_on_another_users_job(self):
        first = self.queue_held(self.portal, "member", 1, unique_key="sync", unique_scope="site")
        self.assertIsNone(self.queue_held(self.portal, "editor", 1, unique_key="sync", unique_scope="site"),
                          "one job for the site: nothing queued, and no handle on the member's job")
        self.assertIs(self.queue_held(self.portal, "member", 1, unique_key="sync", unique_scope="site"), first)
        elsewhere = self.queue_held(self.other, OTHER_MANAGER, 1, unique_key="sync", unique_scope="site")
        self.assertIsNotNone(elsewhere)
        self.assertIsNot(elsewhere, first)

    def test_a_bad_scope_is_refused(self):
        with self.assertRaisesRegex(ValueError, "unique_scope"):
            self.queue_held(self.portal, "member", 1, unique_key="k", unique_scope="database")
        with self.assertRaisesRegex(ValueError, "unique_scope"):
            self.queue_held(self.portal, "member", 1, unique_scope="site")

    def test_task_unique_is_per_user(self):
        from collective.zasync.dev.examples import summarize

        self.as_user(self.portal, "member")
        mine = summarize.enqueue(self.portal)
        self.as_user(self.portal, "editor")
        theirs = summarize.enqueue(self.portal)
        self.assertIsNot(theirs, mine)
        self.assertIs(summarize.enqueue(self.portal), theirs)

    def test_the_key_is_free_again_once_the_job_finished(self):
        self.as_user(self.portal, "manager")
        first = self.service.queueJob(sample_jobs.add, self.portal, 1, unique_key="once")
        wait_for_result(first)
        self.as_user(self.portal, "manager")
        again = self.service.queueJob(sample_jobs.add, self.portal, 1, unique_key="once")
        self.assertIsNot(again, first)
        wait_for_result(again)


class TestItemIndex(TwoSitesTestCase):
    """An item's jobs are found by its database and oid: never by the oid alone (oids repeat
    across databases), nor by the path of an item not stored yet."""

    def filed(self, *jobs):
        queue = self.service.getQueues()[""]
        wait_until(lambda: all(job.id in queue.jobs for job in jobs), "the jobs filed")

    def listed(self, item):
        return [job.id for job in jobs_of_content(get_queue_root(self.portal._p_jar), item)]

    def test_an_item_not_stored_yet_gets_its_oid_when_the_transaction_commits(self):
        self.as_user(self.portal, "manager")
        # added, not stored yet (as when a content rule on "object added" queues a job)
        self.portal._setObject("fresh", createContent("Document", id="fresh", title="Fresh"), suppress_events=True)
        fresh = self.portal["fresh"]
        self.assertIsNone(fresh._p_oid, "not stored yet")
        job = self.service.queueJob(sample_jobs.add, fresh, 1)
        wait_for_result(job)
        self.filed(job)
        self.assertEqual((job.context_oid, job.context_database), (fresh._p_oid, fresh._p_jar.db().database_name))
        self.assertEqual(self.listed(fresh), [job.id])
        # moved away, and another item made at its old path: the job stays with its item
        self.as_user(self.portal, "manager")
        api.content.rename(obj=fresh, new_id="moved")
        newcomer = api.content.create(self.portal, "Document", id="fresh", title="Newcomer")
        transaction.commit()
        self.assertEqual(self.listed(self.portal["moved"]), [job.id])
        self.assertEqual(self.listed(newcomer), [])

    def test_the_same_oid_in_another_database_is_another_item(self):
        self.as_user(self.portal, "manager")
        doc = api.content.create(self.portal, "Document", id="doc", title="Doc")
        transaction.commit()
        mine = self.service.queueJob(sample_jobs.add, doc, 1)
        theirs = self.service.queueJob(sample_jobs.add, self.portal, 2)
        # queued on an item of a mounted database whose oid is the same number
        theirs.context_oid, theirs.context_database = doc._p_oid, "another"
        wait_for_result(mine)
        wait_for_result(theirs)
        self.filed(mine, theirs)
        self.assertEqual(self.listed(doc), [mine.id])

    def test_the_trees_of_a_user_an_item_and_a_site_go_with_their_last_job(self):
        self.as_user(self.portal, "member")
        job = self.service.queueJob(sample_jobs.add, self.portal, 1)
        wait_for_result(job)
        self.filed(job)
        queue = self.service.getQueues()[""]
        keys = (("/plone/acl_users", "member"), indexes.item_key(job), "/plone")
        for name, key in zip(("by_user", "by_item", "by_site"), keys):
            self.assertIn(key, getattr(queue, name), name)
        login(self.app, SITE_OWNER_NAME)
        admin.remove(job)
        transaction.commit()
        self.assertNotIn(keys[0], queue.by_user)
        self.assertNotIn(keys[1], queue.by_item)


class TestCommandLinePerSite(TwoSitesTestCase):
    """``zasync --site`` shows and steers the jobs of that site only."""

    def zasync(self, site, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main([*argv, "-C", "zope.conf", "--yes"] if argv[0] in ("retry", "cancel", "purge")
                            else [*argv, "-C", "zope.conf"], site=site)
        return code, out.getvalue(), err.getvalue()

    def test_status_list_show_purge(self):
        failed = {}
        for site, user in ((self.portal, "manager"), (self.other, OTHER_MANAGER)):
            self.as_user(site, user)
            failed[site.getId()] = self.service.queueJob(sample_jobs.fail, site, "boom")
            wait_for_result(failed[site.getId()])
        queue = self.service.getQueues()[""]
        wait_until(lambda: queue.failed_count() == 2, "the jobs filed")
        code, out, _ = self.zasync(self.other, "status", "--json")
        self.assertEqual(json.loads(out)["queues"][""]["failed"], 1)
        code, out, _ = self.zasync(self.other, "list", "--state", "failed", "--json")
        self.assertEqual([job["id"] for job in json.loads(out)], [failed["plone2"].id])
        code, _out, err = self.zasync(self.other, "show", failed["plone"].id)
        self.assertEqual(code, 1, "another site's job is not there")
        code, _out, err = self.zasync(self.other, "retry", failed["plone"].id)
        self.assertEqual(code, 1)
        code, out, _ = self.zasync(self.other, "purge", "--state", "failed", "--json")
        self.assertEqual(json.loads(out), {"removed": 1})
        transaction.begin()
        self.assertEqual([job.id for job in queue.failed.values()], [failed["plone"].id])


class TestLookupById(TwoSitesTestCase):
    """A job id is not an access key: a page looks a job up with api.get_job, which gives the
    user's own job, or any job of the site to "Manage portal"."""

    def test_get_job_is_checked(self):
        job = self.queue_held(self.portal, "member", 1)
        transaction.commit()
        for site, user, expected in ((self.portal, "member", job), (self.portal, "editor", None),
                                     (self.portal, "siteadmin", None), (self.portal, "manager", job),
                                     (self.portal, SITE_OWNER_NAME, job), (self.other, OTHER_MANAGER, None)):
            self.as_user(site, user)
            self.assertIs(api_module.get_job(job.id), expected, user)
        self.as_user(self.portal, "editor")
        with self.assertRaises(LookupError):
            api_module.get_progress(job.id)
        self.as_user(self.portal, "member")
        self.assertEqual(api_module.get_progress(job.id), (-1, None))

    def test_get_job_of_the_service_is_the_sites(self):
        job = self.queue_held(self.portal, "member", 1)
        transaction.commit()
        self.as_user(self.other, OTHER_MANAGER)
        self.assertIsNone(self.service.getJob(job.id), "a job of another site")
        self.as_user(self.portal, "editor")
        self.assertIs(self.service.getJob(job.id), job, "unchecked: for code that checks itself")


class TestDeletedUser(TwoSitesTestCase):
    """Deleting a user fails their pending and delayed jobs and stops their recurring jobs, as
    deleting content does; a new account with the same id never runs nor sees the old jobs."""

    def delete_and_recreate(self, name):
        self.as_user(self.portal, "manager")
        api.user.delete(username=name)
        transaction.commit()
        api.user.create(email="new-%s@example.org" % name, username=name, password="another-Pw-456",
                        roles=["Member"])
        transaction.commit()

    def test_pending_delayed_and_recurring_jobs_end(self):
        pending = self.queue_held(self.portal, "member", 1)
        self.as_user(self.portal, "member")
        later = datetime.now(timezone.utc) + timedelta(days=1)
        delayed = self.service.queueJobWithDelay(None, later, sample_jobs.add, self.portal, 2)
        recurring = self.service.queueRecurringJob(sample_jobs.add, self.portal, 3600, 3)
        done = self.service.queueJob(sample_jobs.add, self.portal, 4)
        wait_for_result(done)
        self.delete_and_recreate("member")
        for job in (pending, delayed, recurring):
            self.assertEqual(state_name(job), "failed", job)
            self.assertIn("the user was deleted", str(job.result))
        self.assertTrue(recurring.recurrence.cancelled)
        self.as_user(self.portal, "member")  # the new account
        self.assertEqual(list(jobs_of_user(get_queue_root(self.portal._p_jar), "/plone/acl_users", "member")), [])
        for job in (pending, done):
            self.assertIsNone(api_module.get_job(job.id))

    def test_a_callback_of_a_running_job_never_runs_as_the_new_account(self):
        sample_jobs.gate.clear()
        self.as_user(self.portal, "member")
        running = self.service.queueJob(sample_jobs.report_progress, self.portal)
        callback = running.addCallback(who_called_back)
        transaction.commit()
        try:
            wait_until(lambda: running.status == "active-status", "the job to start")
            self.delete_and_recreate("member")
        finally:
            sample_jobs.gate.set()
        wait_for_result(callback, seconds=30)
        self.assertIsInstance(callback.result, Failure)
        self.assertIn("no longer exists", str(callback.result))
