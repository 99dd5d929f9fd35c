"""Schedules of recurring jobs: cron lines (cronsim) read in a time zone, across daylight-saving changes.

The site's time zone applies when the line names none (tests/inprocess/test_recurring_jobs.py
queues one); recurrences stored before zones were kept read theirs in UTC.
"""

from collective.zasync.core.recurring import check_schedule
from collective.zasync.core.recurring import next_cron_time
from collective.zasync.core.recurring import parse_cron
from collective.zasync.core.recurring import Recurrence
from collective.zasync.core.recurring import schedule_text
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import unittest


UTC = timezone.utc
BRUSSELS = "Europe/Brussels"


def at(*args):
    return datetime(*args, tzinfo=UTC)


def runs(recurrence, after, count):
    """The next ``count`` times ``recurrence`` is due after ``after``, each from the one before."""
    times = []
    for _ in range(count):
        after = recurrence.next_time(after)
        times.append(after)
    return times


class TestCronLines(unittest.TestCase):
    def test_fields_ranges_steps_lists(self):
        after = at(2026, 11, 24, 10, 7)  # a Tuesday
        self.assertEqual(next_cron_time("*/15 * * * *", "UTC", after), after.replace(minute=15))
        self.assertEqual(next_cron_time("0 3 * * *", "UTC", after), at(2026, 11, 25, 3, 0))
        self.assertEqual(next_cron_time("30 8 * * 1", "UTC", after), at(2026, 11, 30, 8, 30))
        self.assertEqual(next_cron_time("0 0 1 1 *", "UTC", after), at(2027, 1, 1, 0, 0))
        self.assertEqual(next_cron_time("0 9-17/4 * * 1,3", "UTC", after), at(2026, 11, 25, 9, 0))

    def test_names_and_shortcuts(self):
        after = at(2026, 11, 24, 10, 7)
        self.assertEqual(next_cron_time("30 8 * * MON", "UTC", after), at(2026, 11, 30, 8, 30))
        self.assertEqual(next_cron_time("0 0 1 JAN *", "UTC", after), at(2027, 1, 1, 0, 0))
        self.assertEqual(parse_cron("@daily"), ("0 0 * * *", "UTC"))
        self.assertEqual(parse_cron("@hourly"), ("0 * * * *", "UTC"))
        self.assertEqual(parse_cron("@weekly", BRUSSELS), ("0 0 * * 0", BRUSSELS))

    def test_a_line_names_its_zone_else_the_default_applies(self):
        self.assertEqual(parse_cron("TZ=Europe/Brussels 0 3 * * *", "UTC"), ("0 3 * * *", BRUSSELS))
        self.assertEqual(parse_cron("0 3 * * *", BRUSSELS), ("0 3 * * *", BRUSSELS))
        self.assertEqual(check_schedule(90), (90.0, None))
        self.assertEqual(check_schedule(timedelta(minutes=2)), (120.0, None))
        self.assertEqual(schedule_text(*check_schedule("0 3 * * *", BRUSSELS)), "TZ=Europe/Brussels 0 3 * * *")

    def test_bad_schedules_say_what_is_wrong(self):
        for bad in ("* * *", "61 * * * *", "a * * * *", "*/0 * * * *", "0 0 31 2 *",
                    "* * * * * *", "@sometimes"):
            with self.assertRaises(ValueError, msg=bad):
                parse_cron(bad)
        with self.assertRaises(ValueError) as raised:
            parse_cron("TZ=Europe/Nowhere 0 3 * * *")
        self.assertIn("no time zone 'Europe/Nowhere'", str(raised.exception))
        with self.assertRaises(ValueError):
            check_schedule(0.5)
        with self.assertRaises(TypeError):
            check_schedule([1])


class TestDaylightSaving(unittest.TestCase):
    """Europe/Brussels: CET (UTC+1) in winter, CEST (UTC+2) from the last Sunday of March at 02:00
    (30 March 2025) to the last Sunday of October at 03:00 (26 October 2025)."""

    def test_every_day_at_three_stays_at_three_across_both_changes(self):
        daily = Recurrence("0 3 * * *", BRUSSELS)
        self.assertEqual(runs(daily, at(2025, 3, 28, 12), 3),
                         [at(2025, 3, 29, 2), at(2025, 3, 30, 1), at(2025, 3, 31, 1)])  # 03:00 each day
        self.assertEqual(runs(daily, at(2025, 10, 24, 12), 3),
                         [at(2025, 10, 25, 1), at(2025, 10, 26, 2), at(2025, 10, 27, 2)])

    def test_a_time_skipped_in_spring_runs_at_once_one_repeated_in_autumn_runs_once(self):
        nightly = Recurrence("30 2 * * *", BRUSSELS)
        # 30 March: 02:30 does not exist (02:00 becomes 03:00): it runs at 03:00 CEST.
        self.assertEqual(runs(nightly, at(2025, 3, 29, 12), 2), [at(2025, 3, 30, 1), at(2025, 3, 31, 0, 30)])
        # 26 October: 02:30 comes twice (03:00 becomes 02:00): it runs once, at the first.
        self.assertEqual(runs(nightly, at(2025, 10, 25, 12), 2), [at(2025, 10, 26, 0, 30), at(2025, 10, 27, 1, 30)])

    def test_in_utc_the_local_time_drifts_by_the_hour_that_a_zone_keeps(self):
        daily = Recurrence("0 3 * * *", "UTC")
        self.assertEqual(runs(daily, at(2025, 3, 29, 12), 2), [at(2025, 3, 30, 3), at(2025, 3, 31, 3)])

    def test_intervals_know_no_zone(self):
        every = Recurrence(3600, BRUSSELS)
        self.assertEqual(every.timezone, None)
        self.assertEqual(runs(every, at(2025, 3, 30, 0, 30), 2), [at(2025, 3, 30, 1, 30), at(2025, 3, 30, 2, 30)])
        self.assertEqual(every.describe(), "every 3600 s")


class TestStoredRecurrences(unittest.TestCase):
    def test_a_recurrence_stored_before_zones_reads_its_line_in_utc(self):
        stored = Recurrence.__new__(Recurrence)
        stored.__setstate__({"id": "x", "schedule": "0 3 * * *", "created": at(2025, 1, 1)})
        self.assertEqual(stored.timezone, "UTC")
        self.assertEqual(stored.next_time(at(2025, 3, 29, 12)), at(2025, 3, 30, 3))
        self.assertEqual(stored.describe(), "cron 0 3 * * * (UTC)")
