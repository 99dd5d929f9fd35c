"""Rate limits per quota name: at most N starts per window over all workers; none fails for it."""

from collective.zasync.client import reading
from collective.zasync.core.job import state_name
from collective.zasync.core.job import utcnow
from collective.zasync.testing import wait_for_result
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.settings import WorkerSettings
from datetime import timedelta
from tests.support import control_jobs
from tests.support.base import OwnWorkerTestCase
from tests.support.base import Queueing

import transaction
import uuid


class TestRateLimits(Queueing, OwnWorkerTestCase):

    def setUp(self):
        super().setUp()
        control_jobs.starts.clear()
        self.second = None

    def tearDown(self):
        if self.second is not None:
            self.second.stop()
        super().tearDown()

    def test_never_more_starts_per_window_than_the_limit_over_two_workers(self):
        queue = self.service.createQueue("mail")
        queue.rate_limits["smtp"] = (3, timedelta(seconds=1))  # no concurrency quota "smtp"
        jobs = [self.record("mail%d" % n, queue="mail", quota_names=("smtp",)) for n in range(10)]
        free = [self.record("free%d" % n, queue="mail") for n in range(4)]
        transaction.commit()
        self.start_worker(threads=2)
        settings = WorkerSettings(threads=2, poll_interval=0.2, ping_interval=1.0, death_interval=30.0,
                                  max_retries=3, stop_timeout=10.0)
        self.second = Dispatcher(self.layer["zodbDB"], str(uuid.uuid4()), settings)
        self.second.start()
        self.wait_for_all(jobs + free)
        self.assertEqual([job.result for job in jobs], ["mail%d" % n for n in range(10)])  # none failed
        limited = sorted(when for label, when in control_jobs.starts if label.startswith("mail"))
        self.assertEqual(len(limited), 10)
        # In any window of 1 s at most 3 starts: the 4th start after any one is 1 s later or more
        # (1 microsecond: the window stores the claim's time as float seconds).
        gaps = [limited[i + 3] - limited[i] for i in range(len(limited) - 3)]
        self.assertGreaterEqual(min(gaps), 1_000_000 - 1, gaps)
        # Both dispatchers slept until the window reopened, they did not spin.
        passes = self.worker.loop_state.passes + self.second.loop_state.passes
        self.assertLess(passes, 1000)
        print("\n  [rate] 10 jobs at 3/s over two workers: %d dispatcher passes" % passes)

    def test_a_backlog_held_by_its_rate_does_not_hide_the_jobs_behind_it(self):
        queue = self.service.createQueue("mail")
        queue.set_rate_limit("smtp", 1, timedelta(hours=1))
        held = [self.record("mail%d" % n, queue="mail", quota_names=("smtp",)) for n in range(60)]
        free = self.record("free", queue="mail")
        transaction.commit()
        self.start_worker(threads=1)
        self.assertEqual(wait_for_result(free), "free")
        self.assertEqual(wait_for_result(held[0]), "mail0")
        self.assertEqual([state_name(job) for job in held[1:]], ["pending"] * 59)  # not failed
        self.assertEqual(control_jobs.labels(), ["mail0", "free"])

    def test_two_claims_under_one_rate_limit_at_once_conflict(self):
        from collective.zasync.core.queue import get_queue_root
        from ZODB.POSException import ConflictError

        self.service.createQueue("mail").set_rate_limit("smtp", 5, 60)
        transaction.commit()
        managers = [transaction.TransactionManager() for _ in range(2)]
        connections = [self.layer["zodbDB"].open(transaction_manager=tm) for tm in managers]
        try:
            for tm, conn in zip(managers, connections):  # two dispatchers, each starting a job
                tm.begin()
                get_queue_root(conn).queues["mail"].rate_limits.window("smtp").record(utcnow().timestamp())
            managers[0].commit()
            with self.assertRaises(ConflictError):  # the second retries and counts the first's start
                managers[1].commit()
        finally:
            for tm, conn in zip(managers, connections):
                tm.abort()
                conn.close()
        transaction.begin()
        self.assertEqual(len(self.service.getQueues()["mail"].rate_limits.window("smtp").starts), 1)

    def test_rate_limits_mapping_set_rate_limit_and_what_is_shown(self):
        queue = self.service.createQueue("mail")
        self.assertEqual(dict(queue.rate_limits.items()), {})
        queue.set_rate_limit("smtp", 60, timedelta(minutes=1))
        queue.rate_limits["api"] = (5, 10)
        self.assertEqual(queue.rate_limits["smtp"], (60, timedelta(minutes=1)))
        self.assertEqual(sorted(queue.rate_limits), ["api", "smtp"])
        transaction.commit()
        self.assertEqual(reading.rate_limits_info(queue), {"api": {"count": 5, "per": 10.0},
                                                           "smtp": {"count": 60, "per": 60.0}})
        html = self.portal.restrictedTraverse("@@zasync-controlpanel")()
        self.assertIn("smtp 60 / 60 s", html)
        from collective.zasync.restapi.services import QueuesGet

        service = QueuesGet()  # GET @zasync-queues
        service.context, service.request = self.portal, self.portal.REQUEST
        answer = service.reply()
        [mail] = [info for info in answer["queues"] if info["name"] == "mail"]
        self.assertEqual(mail["rate_limits"]["smtp"], {"count": 60, "per": 60.0})
        # A rate limit alone makes the name usable in quota_names; removing it lets queued jobs run.
        job = self.record("api job", queue="mail", quota_names=("api",))
        queue.set_rate_limit("api", None)
        self.assertNotIn("api", queue.rate_limits)
        self.start_worker(threads=1)
        self.assertEqual(wait_for_result(job), "api job")
        with self.assertRaises(ValueError) as raised:
            self.record("x", queue="mail", quota_names=("api",))  # no quota, no rate limit any more
        self.assertIn("has no quota 'api'", str(raised.exception))

    def test_bad_rate_limits_are_refused(self):
        queue = self.service.createQueue("mail")
        for value in ((0, 60), (-1, 60), ("5", 60), (True, 60), (10_001, 60), (5, 0), (5, -1),
                      (5, "1m"), (5, timedelta(days=8)), 5, (5,), "5/m"):
            with self.assertRaises((TypeError, ValueError)) as raised:
                queue.rate_limits["smtp"] = value
            self.assertIn("rate limit", str(raised.exception))
        with self.assertRaises(TypeError):
            queue.set_rate_limit(None, 5, 60)
        with self.assertRaises(ValueError):
            queue.set_rate_limit("smtp", 2.5, 60)
        self.assertEqual(len(queue.rate_limits), 0)
        with self.assertRaises(ValueError):
            self.record("x", queue="mail", quota_names=("smtp",))
        transaction.abort()
