User interface: Site Setup → Background jobs (queues, jobs by state, workers; Retry, Cancel,
Remove; settings), "My jobs" in the user menu for every user, "Background jobs" of a content
item, transaction notes that show a job's changes in Undo and History, the settings in
plone.restapi's ``@controlpanels`` for Volto, and REST services (``@zasync-queues``,
``@zasync-jobs``, ``@zasync-my-jobs``, ``@zasync-content-jobs``). Through the web: job
functions offered by add-ons (``<zasync:jobFunction>``), the content rule action "Run in the
background", and the GenericSetup step ``zasync.xml`` for queues, quotas, rate limits and
recurring jobs.
