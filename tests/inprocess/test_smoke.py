"""zasync smoke: a harmless job end to end, as the given user, and what it says when no worker runs."""

from collective.zasync.client import cli
from collective.zasync.interfaces import COMPLETED
from plone.app.testing import TEST_USER_ID
from plone.app.testing import TEST_USER_NAME
from tests.support.base import OwnWorkerTestCase
from tests.support.base import WorkerTestCase

import contextlib
import io
import transaction


def smoke(portal, *options):
    """(exit code, stdout, stderr) of ``zasync smoke`` on ``portal``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["smoke", "-C", "unused"] + list(options), site=portal)
    return code, out.getvalue(), err.getvalue()


class TestSmoke(WorkerTestCase):

    def test_a_worker_runs_the_job_as_the_user(self):
        code, out, err = smoke(self.portal, "--user", TEST_USER_NAME, "--json")
        self.assertEqual(code, 0, err)
        self.assertIn('"user": "%s"' % TEST_USER_ID, out)
        self.assertIn(self.layer["zasync_dispatcher"].uuid, out)
        job_id = out.split('"job": "', 1)[1].split('"', 1)[0]
        transaction.begin()
        job = self.service.getJob(job_id)
        self.assertEqual((job.status, job.result["user"]), (COMPLETED, TEST_USER_ID))

    def test_an_unknown_user_is_refused(self):
        code, out, err = smoke(self.portal, "--user", "nobody-here")
        self.assertEqual(code, 1)
        self.assertIn("no user 'nobody-here'", err)


class TestSmokeWithoutWorker(OwnWorkerTestCase):

    def test_it_says_no_worker_is_alive_and_cancels_its_job(self):
        code, out, err = smoke(self.portal, "--user", TEST_USER_NAME, "--timeout", "1")
        self.assertEqual(code, 1)
        self.assertIn("no worker is alive", err)
        job_id = err.split("the job ", 1)[1].split(" ", 1)[0]
        transaction.begin()
        job = self.service.getJob(job_id)
        self.assertEqual(job.status, COMPLETED)
        self.assertEqual(job.result.type.__name__, "Cancelled")
