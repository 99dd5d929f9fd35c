"""My jobs (@@zasync-my-jobs, @zasync-my-jobs) over real HTTP: each user sees only their own
jobs, cancels only their own pending jobs; the index by user is kept by the dispatchers."""

from collective.zasync.client import reading
from collective.zasync.core.indexes import build_indexes
from collective.zasync.core.indexes import jobs_of_user
from collective.zasync.core.queue import get_queue_root
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from collective.zasync.client import admin
from plone.app.testing import login
from plone.app.testing import setRoles
from plone.app.testing import TEST_USER_ID
from plone.app.testing import TEST_USER_NAME
from plone.app.testing import TEST_USER_PASSWORD
from tests.support import sample_jobs
from tests.support.base import OwnWorkerTestCase
from tests.support.panel import PanelTestCase

import transaction


def rows(page):
    """{job id: row element} of a My jobs page."""
    return {row.get("data-job-id"): row for row in page.xpath('//tr[@data-job-id]')}


class MyJobsTestCase(PanelTestCase):
    def queue_as(self, user, func, *args, queue=None, **kwargs):
        """Queue ``func(portal, *args)`` as ``user`` (in the test's transaction)."""
        login(self.portal, user)
        try:
            if queue is not None:
                return self.service.queueJobInQueue(queue, ("none",), func, self.portal, *args, **kwargs)
            return self.service.queueJob(func, self.portal, *args, **kwargs)
        finally:
            setRoles(self.portal, TEST_USER_ID, ["Manager"])
            login(self.portal, TEST_USER_NAME)

    def held_queue(self):
        """A queue whose quota of 0 keeps its jobs pending for good."""
        held = self.service.createQueue("held")
        held.quotas["none"] = 0
        return held

    def api(self, method, path, user, **kwargs):
        response = self.session(user, json=True).request(method, self.url(path), **kwargs)
        return response.status_code, (response.json() if response.content else None)


class TestMyJobs(MyJobsTestCase):
    def test_each_user_sees_only_their_own_jobs(self):
        done = self.queue_as("member", sample_jobs.add, 20, 22)
        failed = self.queue_as("member", sample_jobs.fail, "the disk is full")
        other = self.queue_as("editor", sample_jobs.add, 1, 2)
        for job in (done, failed, other):
            wait_for_result(job)
        self.wait_filed(lambda queue: queue.completed_count() + queue.failed_count() == 3)

        page = self.get_page("@@zasync-my-jobs", "member")
        self.assertEqual(set(rows(page)), {done.id, failed.id})
        self.assertEqual(rows(page)[done.id].get("data-state"), "completed")
        self.assertEqual(rows(page)[done.id].xpath('.//*[@class="zasync-result"]')[0].text, "42")
        self.assertEqual(rows(page)[failed.id].xpath('.//*[contains(@class, "zasync-error")]')[0].text,
                         "ValueError: the disk is full")
        self.assertNotIn("Traceback", page.text_content())
        self.assertFalse(page.xpath('//*[contains(@class, "zasync-cancel")]'), "nothing to cancel")
        self.assertEqual(list(rows(self.get_page("@@zasync-my-jobs", "editor"))), [other.id])
        self.assertEqual(rows(self.get_page("@@zasync-my-jobs", "siteadmin")), {})

        status, data = self.api("GET", "@zasync-my-jobs", "member")
        self.assertEqual(status, 200)
        self.assertEqual([item["id"] for item in data["items"]], [failed.id, done.id])  # newest first
        self.assertEqual((data["items"][1]["result"], data["items"][0]["error"]),
                         ("42", "ValueError: the disk is full"))
        self.assertNotIn("traceback", data["items"][0])
        self.assertNotIn("args", data["items"][0])

    def test_manage_portal_sees_arguments_and_tracebacks(self):
        # (The test user is a Manager: jobs queued in the test are theirs.)
        failed = self.service.queueJob(sample_jobs.fail, self.portal, "boom")
        wait_for_result(failed)
        self.wait_filed(lambda queue: queue.failed_count() == 1)
        status, data = self.api("GET", "@zasync-my-jobs", "anonymous")
        self.assertEqual(status, 401)
        response = self.session("anonymous").get(self.url("@@zasync-my-jobs"), allow_redirects=False)
        self.assertIn(response.status_code, (302, 401))  # to the login form
        session = self.session("anonymous", json=True)
        session.auth = (TEST_USER_NAME, TEST_USER_PASSWORD)
        data = session.get(self.url("@zasync-my-jobs")).json()
        [item] = data["items"]
        self.assertEqual(item["args"], ["'boom'"])
        self.assertIn("Traceback (most recent call last)", item["traceback"])

    def test_the_menu_links_to_my_jobs(self):
        page = self.get_page("", "member")
        links = page.xpath('//a[contains(@href, "@@zasync-my-jobs")]')
        self.assertTrue(links, "no My jobs in the user menu")
        self.assertIn("My jobs", links[0].text_content())
        response = self.session("anonymous").get(self.url(""))
        self.assertNotIn("@@zasync-my-jobs", response.text)

    def test_pages_of_twenty_newest_first(self):
        self.held_queue()
        jobs = [self.queue_as("member", sample_jobs.add, number, queue="held") for number in range(25)]
        transaction.commit()
        self.wait_filed(lambda queue: len(queue.waiting) == 25, "held")
        first = self.get_page("@@zasync-my-jobs", "member")
        self.assertEqual(list(rows(first)), [job.id for job in reversed(jobs[5:])])
        self.assertEqual({row.get("data-state") for row in rows(first).values()}, {"pending"})
        older = first.xpath('//a[contains(@class, "zasync-next")]/@href')[0]
        self.assertIn("b_start=20", older)
        second = self.html(self.session("member").get(older))
        self.assertEqual(list(rows(second)), [job.id for job in reversed(jobs[:5])])
        self.assertFalse(second.xpath('//a[contains(@class, "zasync-next")]'))
        status, data = self.api("GET", "@zasync-my-jobs", "member", params={"b_start": 20})
        self.assertEqual([item["id"] for item in data["items"]], [job.id for job in reversed(jobs[:5])])
        self.assertIn("prev", data["batching"])


class TestCancelOwnJobs(MyJobsTestCase):
    def post_cancel(self, user, job, token=True):
        form = {"zasync.action": "cancel", "job_id": job.id}
        if token:
            form["_authenticator"] = self.token(user)
        return self.session(user).post(self.url("@@zasync-my-jobs"), data=form, allow_redirects=False)

    def test_cancel_own_pending_job_only_with_a_token(self):
        self.held_queue()
        job = self.queue_as("member", sample_jobs.add, 1, queue="held")
        transaction.commit()
        page = self.get_page("@@zasync-my-jobs", "member")
        self.assertTrue(rows(page)[job.id].xpath('.//button[contains(@class, "zasync-cancel")]'))

        self.assertEqual(self.post_cancel("member", job, token=False).status_code, 403)
        self.assertEqual(self.post_cancel("editor", job).status_code, 403)
        self.assertEqual(self.post_cancel("manager", job).status_code, 403)  # the panel is theirs
        transaction.begin()
        self.assertEqual(reading.state_name(job), "pending")

        self.assertEqual(self.post_cancel("member", job).status_code, 302)
        transaction.begin()
        self.assertEqual(str(job.result), "Cancelled: Cancelled before it ran.")
        row = rows(self.get_page("@@zasync-my-jobs", "member"))[job.id]
        self.assertEqual(row.get("data-state"), "failed")

    def test_cancel_through_the_api(self):
        self.held_queue()
        job = self.queue_as("member", sample_jobs.add, 1, queue="held")
        transaction.commit()
        status, data = self.api("GET", "@zasync-my-jobs", "member")
        self.assertEqual(data["items"][0]["cancel"], self.url("@zasync-my-jobs/%s/cancel" % job.id))
        status, data = self.api("POST", "@zasync-my-jobs/%s/cancel" % job.id, "editor")
        self.assertEqual(status, 403, data)
        status, _data = self.api("POST", "@zasync-my-jobs/%s/cancel" % job.id, "anonymous")
        self.assertEqual(status, 401)
        status, data = self.api("POST", "@zasync-my-jobs/%s/cancel" % job.id, "member")
        self.assertEqual((status, data["state"], data["error"]), (200, "failed", "Cancelled: Cancelled before it ran."))
        status, data = self.api("POST", "@zasync-my-jobs/%s/cancel" % job.id, "member")
        self.assertEqual(status, 400)  # finished now


class TestUserIndex(MyJobsTestCase):
    def test_filed_removed_and_rebuilt_for_older_databases(self):
        jobs = [self.queue_as("member", sample_jobs.add, number) for number in range(3)]
        for job in jobs:
            wait_for_result(job)
        self.wait_filed(lambda queue: queue.completed_count() == 3)
        root = get_queue_root(self.portal._p_jar)
        queue = root.queues[""]
        key = ("/plone/acl_users", "member")
        self.assertEqual(sorted(job.id for job in queue.by_user[key].values()), [job.id for job in jobs])
        self.assertEqual([job.id for job in jobs_of_user(root, *key)], [job.id for job in reversed(jobs)])

        admin.remove(jobs[0])  # an administrator removes one
        self.assertEqual(len(queue.by_user[key]), 2)
        del queue.by_user, queue.by_item  # as in a database of an earlier release
        self.assertEqual(list(jobs_of_user(root, *key)), [])
        self.assertEqual(build_indexes(root), 2)  # (the upgrade step does this)
        self.assertEqual([job.id for job in jobs_of_user(root, *key)], [jobs[2].id, jobs[1].id])
        transaction.commit()


class TestJobsNotFiledYet(OwnWorkerTestCase):
    """No worker running: a job waits in its request's inbox, and is listed all the same."""

    def test_listed_before_and_after_a_worker_files_it(self):
        root = get_queue_root(self.portal._p_jar)
        key = ("/plone/acl_users", TEST_USER_ID)
        job = self.service.queueJob(sample_jobs.add, self.portal, 1)
        transaction.commit()
        self.assertNotIn(job.id, root.queues[""].jobs)  # not filed
        self.assertEqual(list(jobs_of_user(root, *key)), [job])
        self.start_worker()
        wait_for_result(job)
        wait_until(lambda: job.id in root.queues[""].jobs, "the job filed")
        self.assertEqual(list(jobs_of_user(root, *key)), [job])  # once
