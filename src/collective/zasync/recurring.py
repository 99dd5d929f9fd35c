"""Recurring jobs: a job that queues its next run when it finishes.

A Recurrence is shared by all runs of one recurring job. The dispatcher
queues the next run only after the previous one has finished, so two runs of
the same recurring job never overlap. Cancelling the Recurrence stops it.

Schedules: a number of seconds, a timedelta, or a cron line
"minute hour day-of-month month day-of-week" (UTC; ``*``, ``*/n``, ``a-b``,
``a-b/n`` and lists; day-of-week 0 or 7 is Sunday).
"""

from collective.zasync.job import new_job_id
from collective.zasync.job import utcnow
from datetime import timedelta
from persistent import Persistent


FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))


def parse_cron(spec):
    """Parse a cron line into five sets of allowed values; ValueError if bad."""
    parts = spec.split()
    if len(parts) != 5:
        raise ValueError(
            "A cron schedule has 5 fields (minute hour day month weekday), e.g. "
            "'*/15 * * * *'; got %r." % spec
        )
    allowed = []
    for text, (name, low, high) in zip(parts, FIELDS):
        values = set()
        for item in text.split(","):
            rng, _, step = item.partition("/")
            try:
                step = int(step) if step else 1
                if rng == "*":
                    start, end = low, high
                elif "-" in rng:
                    start, end = (int(v) for v in rng.split("-", 1))
                else:
                    start = end = int(rng)
            except ValueError:
                raise ValueError("Bad %s field %r in cron schedule %r." % (name, item, spec)) from None
            if not (low <= start <= end <= high) or step < 1:
                raise ValueError("The %s field %r of %r is out of range %d-%d." % (name, item, spec, low, high))
            values.update(range(start, end + 1, step))
        if name == "weekday" and 7 in values:
            values = (values - {7}) | {0}
        allowed.append(values)
    return allowed, parts[2] != "*", parts[4] != "*"


def next_cron_time(spec, after):
    """The first minute after ``after`` (an aware datetime) that ``spec`` matches."""
    (minutes, hours, days, months, weekdays), day_restricted, weekday_restricted = parse_cron(spec)
    when = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = after + timedelta(days=366 * 5)
    while when < limit:
        if when.month not in months:
            year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
            when = when.replace(year=year, month=month, day=1, hour=0, minute=0)
            continue
        day_ok = when.day in days
        weekday_ok = (when.isoweekday() % 7) in weekdays
        if day_restricted and weekday_restricted:
            matches_day = day_ok or weekday_ok  # cron's rule: either one
        else:
            matches_day = day_ok and weekday_ok
        if not matches_day:
            when = (when + timedelta(days=1)).replace(hour=0, minute=0)
            continue
        if when.hour not in hours:
            when = (when + timedelta(hours=1)).replace(minute=0)
            continue
        if when.minute not in minutes:
            when += timedelta(minutes=1)
            continue
        return when
    raise ValueError("The cron schedule %r never matches." % spec)


def check_schedule(schedule):
    """Return the schedule normalised (seconds as a float, or a cron line)."""
    if isinstance(schedule, timedelta):
        schedule = schedule.total_seconds()
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        if schedule < 1:
            raise ValueError("A recurring job's interval is at least 1 second, not %r." % schedule)
        return float(schedule)
    if isinstance(schedule, str):
        parse_cron(schedule)
        return schedule
    raise TypeError(
        "A schedule is seconds, a timedelta or a cron line like '0 3 * * *', not %r." % (schedule,)
    )


class Recurrence(Persistent):
    """The schedule of a recurring job and the link between its runs."""

    cancelled = False
    runs = 0
    current = None  # the run that is pending or running now
    name = None  # set by the GenericSetup step zasync.xml, which finds it by it again

    def __init__(self, schedule):
        self.id = new_job_id()
        self.schedule = check_schedule(schedule)
        self.created = utcnow()

    def next_time(self, after):
        if isinstance(self.schedule, float):
            return after + timedelta(seconds=self.schedule)
        return next_cron_time(self.schedule, after)

    def describe(self):
        if isinstance(self.schedule, float):
            return "every %g s" % self.schedule
        return "cron %s" % self.schedule

    def next_run(self, previous):
        """A new job like ``previous``, due at the next scheduled time."""
        job = previous.derive(
            recurrence=self,
            begin_after=self.next_time(max(utcnow(), previous.begin_after or previous.queued)),
        )
        self.current = job
        return job
