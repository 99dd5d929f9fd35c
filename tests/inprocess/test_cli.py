"""The ``zasync`` command's verbs on the test site (in-process: ``cli.main(argv, site=portal)``).

As a subprocess against a real instance's zope.conf (loading Zope, the
confirmation prompt on stdin, exit codes): tests/cluster/test_worker_command.py
``test_5_the_zasync_command_line``.
"""

from collective.zasync.client import cli
from collective.zasync.client import reading
from collective.zasync.testing import wait_for_result
from collective.zasync.testing import wait_until
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from tests.support import sample_jobs
from tests.support.base import WorkerTestCase

import contextlib
import io
import json
import transaction


class TestCommandLine(WorkerTestCase):
    def zasync(self, *argv, answer=""):
        """(exit code, stdout, stderr) of ``zasync ARGV -C unused`` on the test site."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with unittest_input(answer):
                code = cli.main([*argv, "-C", "zope.conf"], site=self.portal)
        return code, out.getvalue(), err.getvalue()

    def failed_and_delayed(self):
        failed = self.service.queueJob(sample_jobs.fail_first_attempt, self.portal)
        completed = self.service.queueJob(sample_jobs.add, self.portal, 1, 2)
        later = datetime.now(timezone.utc) + timedelta(days=1)
        delayed = self.service.queueJobWithDelay(None, later, sample_jobs.add, self.portal, 3)
        wait_for_result(completed)
        wait_for_result(failed)
        queue = self.service.getQueues()[""]
        wait_until(lambda: queue.failed_count() == 1 and queue.completed_count() == 1,
                   "the worker to file the finished jobs")
        return failed, completed, delayed

    def test_list_show_retry_cancel_purge(self):
        failed, completed, delayed = self.failed_and_delayed()
        code, out, _ = self.zasync("list", "--state", "failed", "--json")
        self.assertEqual(code, 0)
        [listed] = json.loads(out)
        self.assertEqual((listed["id"], listed["state"]), (failed.id, "failed"))
        self.assertIn("The first attempt fails on purpose.", listed["failure"])
        code, out, _ = self.zasync("list", "--state", "delayed")
        self.assertIn(delayed.id, out)
        self.assertIn("1 delayed jobs in queue ''", out)

        code, out, _ = self.zasync("show", failed.id)
        self.assertIn("callable: tests.support.sample_jobs.fail_first_attempt", out)
        self.assertIn("ValueError: The first attempt fails on purpose.", out)

        # no answer (or "n"): nothing changes
        self.assertEqual(self.zasync("retry", failed.id, answer="n")[0], 1)
        transaction.begin()
        self.assertEqual(reading.job_summary(failed)["state"], "failed")
        code, out, _ = self.zasync("retry", failed.id, answer="y")
        self.assertEqual((code, out.strip()), (0, "Queued again 1 job(s)."))
        self.assertEqual(wait_for_result(failed), "succeeded on attempt 2")

        code, out, _ = self.zasync("cancel", delayed.id, "--yes", "--json")
        self.assertEqual((code, json.loads(out)), (0, {"cancelled": [delayed.id]}))
        transaction.begin()
        self.assertEqual(reading.job_summary(delayed)["state"], "failed")
        self.assertIn("Cancelled before it ran.", str(delayed.result))

        code, out, _ = self.zasync("purge", "--state", "failed", "--yes")
        self.assertEqual((code, out.strip()), (0, "Removed 1 failed jobs."))
        transaction.begin()
        self.assertIsNone(self.service.getJob(delayed.id))
        self.assertIsNotNone(self.service.getJob(completed.id))

    def test_wrong_queue_job_or_action_exit_1_with_a_message(self):
        failed, completed, delayed = self.failed_and_delayed()
        code, out, err = self.zasync("list", "--queue", "nosuch")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("zasync: error: no queue 'nosuch' (--queue); the queues: ''", err)
        code, out, err = self.zasync("show", "0123456789abcdef")
        self.assertEqual(code, 1)
        self.assertIn("no job 0123456789abcdef in any queue", err)
        code, out, err = self.zasync("cancel", delayed.id, completed.id, "--yes")  # refuses both
        self.assertEqual(code, 1)
        self.assertIn("job %s is completed: it cannot be cancelled" % completed.id, err)
        transaction.begin()
        self.assertEqual(reading.job_summary(delayed)["state"], "delayed")

    def test_help_of_every_verb(self):
        for verb in ("status", "list", "show", "retry", "cancel", "purge"):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), self.assertRaises(SystemExit) as exit:
                cli.main([verb, "--help"])
            self.assertEqual(exit.exception.code, 0)
            self.assertIn("usage: zasync %s" % verb, out.getvalue())
            self.assertIn("-C ZOPE_CONF", out.getvalue())
        err = io.StringIO()
        with contextlib.redirect_stderr(err), self.assertRaises(SystemExit) as exit:
            cli.main(["purge", "-C", "zope.conf", "--state", "pending"])
        self.assertEqual(exit.exception.code, 2)
        self.assertIn("invalid choice: 'pending'", err.getvalue())


@contextlib.contextmanager
def unittest_input(answer):
    """``input()`` reads ``answer`` (nothing: end of file)."""
    import builtins

    def fake_input(prompt=""):
        if not answer:
            raise EOFError
        return answer

    original, builtins.input = builtins.input, fake_input
    try:
        yield
    finally:
        builtins.input = original
