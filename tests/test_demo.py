"""make run's demo over real HTTP: queue a job, then watch it on a page that finds it by id.

The demo's pages are not part of the add-on (collective.zasync.demo has its
own ZCML, which make run's instance includes); this layer loads them too.
"""

from collective.zasync.testing import WorkerFunctionalTesting
from collective.zasync.testing import ZASYNC_FIXTURE
from plone.app.testing import PloneSandboxLayer
from plone.testing.zope import WSGI_SERVER_FIXTURE
from tests.panel import PanelTestCase

import re
import time


class DemoLayer(PloneSandboxLayer):
    defaultBases = (ZASYNC_FIXTURE,)

    def setUpZope(self, app, configurationContext):
        import collective.zasync.demo

        self.loadZCML(package=collective.zasync.demo)


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
