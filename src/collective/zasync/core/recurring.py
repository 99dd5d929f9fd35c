"""Recurring jobs: a job that queues its next run when it finishes. Add-ons use
``IAsyncService.queueRecurringJob`` and ``cancelRecurringJob``.

A Recurrence is shared by all runs of one recurring job. The dispatcher
queues the next run only after the previous one has finished, so two runs of
the same recurring job never overlap. Cancelling the Recurrence stops it.

Schedules: a number of seconds, a timedelta, or a cron line: five fields
"minute hour day-of-month month day-of-week" with cron's syntax (``*``, ``*/n``,
``a-b``, lists, names such as ``MON`` or ``JAN``, ``L`` and ``#``), or one of
``@hourly``, ``@daily``, ``@weekly``, ``@monthly``, ``@yearly``. A cron line is
read in a time zone: the one it names first (``"TZ=Europe/Brussels 0 3 * * *"``),
else the site's (``plone.portal_timezone``, when the job is queued), else UTC; so
"every day at 03:00" stays at 03:00 across daylight-saving changes, as Debian's
cron keeps it (cronsim: a time skipped in spring runs at once, one repeated in
autumn runs once). Recurrences stored before time zones were kept read theirs in UTC.
"""

from collective.zasync.core.job import new_job_id
from collective.zasync.core.job import utcnow
from cronsim import CronSim
from cronsim import CronSimError
from datetime import timedelta
from datetime import timezone as dt_timezone
from persistent import Persistent
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError


UTC = "UTC"
# cron's own names for the most common schedules (crontab(5)).
NAMED = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
         "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def zone(name):
    """The time zone named ``name`` (IANA, e.g. "Europe/Brussels"); ValueError if there is none."""
    if name == UTC:
        return dt_timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError("There is no time zone %r: name one of the IANA database, such as "
                         "'Europe/Brussels' or 'UTC'." % (name,)) from None


def parse_cron(text, default_timezone=UTC):
    """(cron line, time zone name) of a schedule's text; ValueError saying what is wrong if bad."""
    parts = text.split()
    timezone = default_timezone or UTC
    if parts and parts[0].upper().startswith("TZ="):
        timezone, parts = parts[0][3:], parts[1:]
    line = " ".join(parts)
    line = NAMED.get(line.lower(), line)
    if len(line.split()) != 5:
        raise ValueError(
            "A cron schedule has 5 fields (minute hour day month weekday), e.g. '*/15 * * * *', or "
            "is one of %s, maybe after a time zone ('TZ=Europe/Brussels 0 3 * * *'); got %r."
            % (", ".join(sorted(NAMED)), text))
    next_cron_time(line, timezone, utcnow())  # raises if it is bad, or never matches
    return line, timezone


def next_cron_time(line, timezone, after):
    """The first time after ``after`` (an aware datetime) that ``line`` matches in ``timezone``, in UTC."""
    tz = zone(timezone)
    try:
        return next(CronSim(line, after.astimezone(tz))).astimezone(dt_timezone.utc)
    except CronSimError as error:
        raise ValueError("Bad cron schedule %r: %s." % (line, error)) from None
    except StopIteration:
        raise ValueError("The cron schedule %r never matches." % line) from None


def check_schedule(schedule, default_timezone=UTC):
    """(schedule, time zone): seconds as a float (no zone), or a cron line and its zone; else raise."""
    if isinstance(schedule, timedelta):
        schedule = schedule.total_seconds()
    if isinstance(schedule, (int, float)) and not isinstance(schedule, bool):
        if schedule < 1:
            raise ValueError("A recurring job's interval is at least 1 second, not %r." % schedule)
        return float(schedule), None
    if isinstance(schedule, str):
        return parse_cron(schedule, default_timezone)
    raise TypeError(
        "A schedule is seconds, a timedelta or a cron line like '0 3 * * *', not %r." % (schedule,)
    )


def schedule_text(schedule, timezone):
    """The schedule as the service and zasync.xml take it: seconds, or 'TZ=zone line'."""
    if isinstance(schedule, float):
        return "%g" % schedule
    return "TZ=%s %s" % (timezone or UTC, schedule)


class Recurrence(Persistent):
    """The schedule of a recurring job and the link between its runs."""

    cancelled = False
    runs = 0
    current = None  # the run that is pending or running now
    name = None  # set by the GenericSetup step zasync.xml, which finds it by it again
    timezone = UTC  # of a cron line (None for an interval); stored before zones were kept: UTC

    def __init__(self, schedule, timezone=UTC):
        self.id = new_job_id()
        self.schedule, self.timezone = check_schedule(schedule, timezone)
        self.created = utcnow()

    def next_time(self, after):
        if isinstance(self.schedule, float):
            return after + timedelta(seconds=self.schedule)
        return next_cron_time(self.schedule, self.timezone, after)

    def describe(self):
        if isinstance(self.schedule, float):
            return "every %g s" % self.schedule
        return "cron %s (%s)" % (self.schedule, self.timezone)

    def next_run(self, previous):
        """A new job like ``previous``, due at the next scheduled time."""
        job = previous.derive(
            recurrence=self,
            begin_after=self.next_time(max(utcnow(), previous.begin_after or previous.queued)),
        )
        self.current = job
        return job
