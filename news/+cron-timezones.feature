Cron schedules of recurring jobs are read by cronsim, in a time zone: the one the line names
(``"TZ=Europe/Brussels 0 3 * * *"``), else the site's (``plone.portal_timezone``), so that a job
"every day at 03:00" stays at 03:00 across daylight-saving changes. Month and weekday names
(``MON``, ``JAN``), ``L``, ``#`` and ``@daily``, ``@hourly``, ``@weekly``, ``@monthly``,
``@yearly`` are understood. Recurring jobs queued before keep their schedule in UTC.
