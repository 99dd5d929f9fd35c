"""make run's demo over real HTTP: queue a job, then watch it on a page that finds it by id.

The demo's pages are not part of the add-on (collective.zasync.dev.demo has its
own ZCML, which make run's instance includes); this layer loads them too.
"""

from collective.zasync.testing import WorkerFunctionalTesting
from collective.zasync.testing import ZASYNC_FIXTURE
from plone.app.testing import PloneSandboxLayer
from plone.testing.zope import WSGI_SERVER_FIXTURE
from tests.support.panel import PanelTestCase

import re
import time


class DemoLayer(PloneSandboxLayer):
    defaultBases = (ZASYNC_FIXTURE,)

    def setUpZope(self, app, configurationContext):
        import collective.zasync.dev.demo

        self.loadZCML(package=collective.zasync.dev.demo)


DEMO_FIXTURE = DemoLayer()
DEMO_TESTING = WorkerFunctionalTesting(bases=(DEMO_FIXTURE, WSGI_SERVER_FIXTURE), name="collective.zasync:Demo")


class TestDemo(PanelTestCase):
    layer = DEMO_TESTING

    def test_queue_a_report_and_watch_it_by_its_id(self):
        session = self.session()
        page = session.get(self.url("@@zasync-demo")).text
        token = re.search(r'name="_authenticator" value="([^"]+)"', page).group(1)
        response = session.post(self.url("@@zasync-demo"), data={"example": "count", "_authenticator": token},
                                allow_redirects=False)
        self.assertEqual(response.status_code, 302)
        watch = response.headers["Location"]
        job_id = watch.split("id=")[1]
        self.assertIn("@@zasync-demo-job?id=", watch)
        deadline = time.monotonic() + 60
        while True:  # as the page does with its refresh: reload until finished
            page = self.html(session.get(watch))
            state = page.xpath('string(//*[@class="zasync-state"])')
            if state == "completed" or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertEqual(state, "completed")
        self.assertIn(job_id, page.xpath('string(//dl[@id="zasync-demo-job"])'))
        self.assertIn("count_content", page.xpath('string(//dl[@id="zasync-demo-job"])'))
        self.assertTrue(page.xpath('string(//*[@class="zasync-result"])'))

    def test_an_unknown_id(self):
        response = self.session().get(self.url("@@zasync-demo-job"), params={"id": "no-such-job"})
        self.assertEqual(response.status_code, 404)
        self.assertIn("No job with this id", response.text)


class TestDemoService(PanelTestCase):
    """POST @zasync-demo: what Volto's demo and its end-to-end test queue jobs with."""

    layer = DEMO_TESTING

    def queue(self, user, example, **kw):
        return self.session(user, json=True).post(self.url("@zasync-demo"), json={"example": example}, **kw)

    def wait_for_state(self, job_id, states, user="member"):
        deadline = time.monotonic() + 60
        while True:
            items = self.session(user, json=True).get(self.url("@zasync-my-jobs")).json()["items"]
            job = next(item for item in items if item["id"] == job_id)
            if job["state"] in states or time.monotonic() > deadline:
                return job
            time.sleep(0.5)

    def test_a_member_queues_a_job_that_runs_as_them(self):
        response = self.queue("member", "count")
        self.assertEqual(response.status_code, 201, response.text)
        job = self.wait_for_state(response.json()["id"], ("completed", "failed"))
        self.assertEqual(job["state"], "completed")
        self.assertEqual(job["user"], "member")

    def test_a_delayed_job_waits(self):
        job = self.queue("member", "later").json()
        self.assertEqual(job["state"], "delayed")
        self.assertTrue(job["cancellable"])

    def test_fail_once_fails_then_succeeds_when_retried(self):
        job_id = self.queue("member", "fail-once").json()["id"]
        job = self.wait_for_state(job_id, ("completed", "failed"))
        self.assertEqual(job["state"], "failed")
        self.assertIn("fails on purpose", job["error"])
        retried = self.session("manager", json=True).post(self.url("@zasync-jobs/%s/retry" % job_id), json={})
        self.assertEqual(retried.status_code, 200, retried.text)
        job = self.wait_for_state(job_id, ("completed",))
        self.assertEqual(job["state"], "completed")
        self.assertEqual(job["result"], "'succeeded when retried'")

    def test_refused_without_json_or_login_or_a_known_example(self):
        form = self.session("member").post(self.url("@zasync-demo"), data={"example": "count"},
                                           headers={"Accept": "application/json"})
        self.assertEqual(form.status_code, 400)
        self.assertIn("JSON", form.json()["error"]["message"])
        self.assertEqual(self.queue("member", "tests.support.sample_jobs.add").status_code, 400)
        self.assertEqual(self.queue("anonymous", "count").status_code, 401)
        self.assertEqual(self.session("member", json=True).get(self.url("@zasync-my-jobs")).json()["items"], [])
