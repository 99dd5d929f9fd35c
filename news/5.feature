Site Setup control panel "Background jobs" (``@@zasync-controlpanel``): queues with counts by
state, paged job lists, job details with traceback, workers, recurring jobs; retry, cancel and
remove as POST actions protected by plone.protect; a settings form. The same data and actions as
plone.restapi services ``@zasync-queues`` and ``@zasync-jobs``.
