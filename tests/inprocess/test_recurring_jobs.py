"""Recurring jobs run on their schedule, never overlapping, until cancelled; a cron line in the site's time zone."""

from collective.zasync.testing import wait_until
from plone import api
from tests.support import sample_jobs
from tests.support.base import WorkerTestCase
from zoneinfo import ZoneInfo

import transaction


class TestRecurring(WorkerTestCase):
    def test_runs_repeatedly_until_cancelled_never_overlapping(self):
        first = self.service.queueRecurringJob(sample_jobs.sleep, self.portal, 1, 0.2)
        recurrence = first.recurrence
        transaction.commit()
        wait_until(lambda: recurrence.runs >= 3, "three runs", seconds=30)
        self.service.cancelRecurringJob(recurrence)
        transaction.commit()
        runs, last = recurrence.runs, recurrence.current  # (pending: cancelled at once; running: ends)
        queue = self.service.getQueues()[""]
        # The dispatcher files a run that ended and schedules the next one in one transaction:
        # once the last run is filed, no run comes after it.
        wait_until(lambda: last in list(queue.finished()) + list(queue.finished(failed=True)),
                   "the last run to be filed")
        self.assertLessEqual(recurrence.runs, runs + 1)
        self.assertEqual([job for job in queue.pending() if job.recurrence is recurrence], [])
        finished = sorted(
            (job.started, job.ended) for job in queue.completed.values() if job.recurrence is recurrence
        )
        self.assertGreaterEqual(len(finished), 3)
        for (_, end), (start, _) in zip(finished, finished[1:]):
            self.assertGreater(start, end)
        self.assertNotIn(recurrence.id, queue.recurring)


class TestScheduleTimeZone(WorkerTestCase):
    """A cron line names its time zone, else the site's (``plone.portal_timezone``) applies."""

    def local_hour(self, job, zone):
        return job.begin_after.astimezone(ZoneInfo(zone)).hour

    def test_the_sites_time_zone_applies_when_the_line_names_none(self):
        api.portal.set_registry_record("plone.portal_timezone", "Europe/Brussels")
        job = self.service.queueRecurringJob(sample_jobs.noop, self.portal, "0 3 * * *")
        self.assertEqual(job.recurrence.timezone, "Europe/Brussels")
        self.assertEqual(self.local_hour(job, "Europe/Brussels"), 3)
        self.assertEqual(job.recurrence.describe(), "cron 0 3 * * * (Europe/Brussels)")
        named = self.service.queueRecurringJob(sample_jobs.noop, self.portal, "TZ=UTC 0 3 * * *")
        self.assertEqual((named.recurrence.timezone, named.begin_after.hour), ("UTC", 3))
        transaction.abort()

    def test_a_bad_schedule_is_refused_at_queue_time(self):
        with self.assertRaises(ValueError) as raised:
            self.service.queueRecurringJob(sample_jobs.noop, self.portal, "TZ=Mars/Olympus 0 3 * * *")
        self.assertIn("no time zone 'Mars/Olympus'", str(raised.exception))
        with self.assertRaises(TypeError):
            self.service.queueRecurringJob(sample_jobs.noop, self.portal, [1])
