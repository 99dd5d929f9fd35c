A Volto add-on, ``@plone-collective/volto-zasync`` (``frontend/``), shows the jobs in Plone 6's
default frontend: My jobs in the personal menu (progress bars that fill while jobs run, results,
errors, cancel), an item's Background jobs in the toolbar for users who may modify it, and Site
Setup → Background jobs (queues, workers, jobs by state, a job's page with its traceback, retry,
cancel, remove, the settings), from the REST services. ``make run-volto`` serves the demo site
through Volto, ``make test-volto`` runs its unit tests and an end-to-end test in headless
Chromium. See ``docs/volto.md``.
