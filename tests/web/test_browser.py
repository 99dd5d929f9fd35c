"""The control panel in a real browser: Debian's chromium, headless, driven by Playwright.

A site administrator logs in, opens Site Setup, follows the "Background
jobs" configlet, sees a finished and a failed job, opens the failed job's
traceback, retries it and sees it complete. The panel is saved as
docs/controlpanel.png for the README. A member opens "My jobs" from the user
menu, watches a job's progress and end without reloading, cancels a delayed
job (docs/myjobs.png). Every page is opened on localhost, as the README tells
users to, and must be styled by the theme; the same check fails on 127.0.0.1,
where Plone serves pages unthemed.
"""

from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path
from playwright.sync_api import sync_playwright
from tests.support.panel import PanelTestCase

import os
import shutil
import time
import transaction


SCREENSHOT = Path(__file__).parent.parent.parent / "docs" / "controlpanel.png"
MY_JOBS_SCREENSHOT = Path(__file__).parent.parent.parent / "docs" / "myjobs.png"


def find_chromium():
    """Debian's chromium (scripts/install-system-deps.sh installs it)."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("No chromium found: run scripts/install-system-deps.sh (as root) or set CHROMIUM.")
    return path


class TestControlPanelInABrowser(PanelTestCase):
    def setUp(self):
        super().setUp()
        self.playwright = sync_playwright().start()
        # --no-sandbox: CI runs as root, where chromium's sandbox cannot start
        self.browser = self.playwright.chromium.launch(executable_path=find_chromium(), args=["--no-sandbox"])
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.set_default_timeout(30_000)

    def tearDown(self):
        self.browser.close()
        self.playwright.stop()
        super().tearDown()

    def log_in(self, user, password):
        page = self.page
        page.goto(self.url("login"))
        self.assert_themed()
        page.fill("#__ac_name", user)
        page.fill("#__ac_password", password)
        page.click("#buttons-login, button[name=\"buttons.login\"], input[name=\"buttons.login\"]")
        page.wait_for_selector("#personaltools-logout", state="attached")

    def theme_state(self):
        """The page's stylesheets and a value that only the theme's CSS sets."""
        return self.page.evaluate("""() => ({
            sheets: Array.from(document.styleSheets).map(sheet => sheet.href || "").filter(Boolean),
            primary: getComputedStyle(document.documentElement).getPropertyValue("--bs-primary").trim(),
        })""")

    def assert_themed(self):
        """The page is styled by the site's theme, as users see it (not the bare HTML that
        Plone serves to unthemed host names such as 127.0.0.1)."""
        # the stylesheets are applied once the page has loaded
        self.page.wait_for_load_state("load")
        state = self.theme_state()
        # Barceloneta's bundle is linked ...
        self.assertTrue(any("++theme++barceloneta" in href for href in state["sheets"]), state)
        # ... and applied: its Bootstrap variables are defined (nothing else defines them)
        self.assertTrue(state["primary"], state)

    def check_the_theme_check(self):
        """The check above tells a themed page from an unthemed one: the login form on
        127.0.0.1 (one of plone.app.theming's unthemed hosts) fails it."""
        self.assertIn("//localhost:", self.site_url)  # the URL the README prints
        self.page.goto(self.url("login").replace("//localhost:", "//127.0.0.1:"))
        self.page.wait_for_selector("#__ac_name")
        with self.assertRaises(AssertionError):
            self.assert_themed()
        state = self.theme_state()
        self.assertEqual([href for href in state["sheets"] if "++theme++" in href], [])
        self.assertEqual(state["primary"], "")

    def test_see_a_failed_job_open_its_traceback_retry_it(self):
        jobs = self.queue_jobs_in_every_state()
        page = self.page
        self.check_the_theme_check()
        self.log_in("manager", "secret-Pw-123")

        page.goto(self.url("@@overview-controlpanel"))
        self.assert_themed()
        page.get_by_role("link", name="Background jobs").click()
        page.wait_for_url("**/@@zasync-controlpanel")
        self.assert_themed()
        default_queue = page.locator('#zasync-queues tr[data-queue=""]')
        self.assertEqual(default_queue.locator(".zasync-count-completed").inner_text().strip(), "1")
        self.assertEqual(default_queue.locator(".zasync-count-failed").inner_text().strip(), "1")

        # the finished job
        default_queue.locator(".zasync-count-completed a").click()
        finished = page.locator("#job-%s" % jobs["completed"].id)
        self.assertIn("tests.support.sample_jobs.add", finished.inner_text())
        self.assertIn("Completed", finished.inner_text())

        # the failed one, with its error
        page.locator('#zasync-queues tr[data-queue=""] .zasync-count-failed a').click()
        failed = page.locator("#job-%s" % jobs["failed"].id)
        self.assertIn("The first attempt fails on purpose.", failed.inner_text())
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # its page, with the traceback
        failed.locator("a.zasync-job-link").click()
        # the click only starts the navigation: reading the page before the job's page has
        # arrived would read (or lose, as the old document goes) the list's page
        page.wait_for_url("**/@@zasync-job?*")
        traceback = page.locator("#zasync-traceback")
        self.assert_themed()
        self.assertIn("Traceback (most recent call last)", traceback.inner_text())
        self.assertIn("ValueError: The first attempt fails on purpose.", traceback.inner_text())

        # retry: it runs again as the user who queued it, and completes
        page.click("#zasync-retry")
        self.assertIn("was queued again", page.locator(".portalMessage, .alert").first.inner_text())
        state = self.wait_for_state("completed")
        self.assertEqual(state, "completed")
        self.assertEqual(page.locator("#zasync-job-result").inner_text(), "'succeeded on attempt 2'")
        self.assertFalse(page.locator("#zasync-traceback").count())
        transaction.begin()
        self.assertEqual(jobs["failed"].result, "succeeded on attempt 2")

    def test_a_member_watches_their_job_on_my_jobs(self):
        from plone.app.testing import login
        from plone.app.testing import TEST_USER_NAME
        from tests.support import sample_jobs

        page = self.page
        self.log_in("member", "secret-Pw-123")
        sample_jobs.gate.clear()
        login(self.portal, "member")  # the member queues, as a view of their add-on would
        done = self.service.queueJob(sample_jobs.add, self.portal, 20, 22)
        failed = self.service.queueJob(sample_jobs.fail, self.portal, "The printer is out of paper.")
        running = self.service.queueJob(sample_jobs.report_progress, self.portal)
        tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
        delayed = self.service.queueJobWithDelay(None, tomorrow, sample_jobs.add, self.portal, 1)
        login(self.portal, TEST_USER_NAME)
        transaction.commit()
        try:
            page.goto(self.url(""))
            page.click("#personaltools-menulink")
            page.click("#personaltools-zasync-my-jobs")
            page.wait_for_url("**/@@zasync-my-jobs")
            self.assert_themed()
            row = page.locator("#job-%s" % running.id)
            # The page asks @zasync-my-jobs every 2 s: the bar fills without a reload.
            row.locator('.progress-bar[aria-valuenow="50"]').wait_for()
            self.assertEqual(row.locator(".progress-bar").inner_text().strip(), "50 %")
            page.locator('#job-%s[data-state="completed"]' % done.id).wait_for()
            self.assertIn("The printer is out of paper.", page.locator("#job-%s" % failed.id).inner_text())
            page.screenshot(path=str(MY_JOBS_SCREENSHOT), full_page=True)
        finally:
            sample_jobs.gate.set()
        page.locator('#job-%s[data-state="completed"]' % running.id).wait_for()
        self.assertEqual(page.locator("#job-%s .zasync-result" % running.id).inner_text(), "'done'")
        self.assertEqual(page.locator("tr[data-job-id]").count(), 4)

        # the member cancels the job that was to run tomorrow
        page.locator("#job-%s .zasync-cancel" % delayed.id).click()
        self.assertIn("was cancelled", page.locator(".portalMessage, .alert").first.inner_text())
        self.assertEqual(page.locator("#job-%s" % delayed.id).get_attribute("data-state"), "failed")

    def wait_for_state(self, wanted, seconds=20):
        """Reload the job page until its state badge says ``wanted``."""
        deadline = time.monotonic() + seconds
        while True:
            state = self.page.locator("#zasync-job-state").get_attribute("data-state")
            if state == wanted or time.monotonic() > deadline:
                return state
            time.sleep(0.2)
            self.page.reload()
