Durable background jobs for Plone 6.2, with plone.app.async's API: ``IAsyncService.queueJob``
and its variants, ``makeJob``, the status constants, ``IJobSuccess`` and ``IJobFailure``. A job
is stored in the request's transaction and runs after it commits (never if it aborts), in a
worker, as the user who queued it (never with more rights; a deleted user fails the job), with
its ZODB effects, its result and its completed state committed together: exactly once. Results,
failures with their tracebacks, callbacks, the events ``IJobStarted`` and ``IJobRetrying``,
``getJob(job_id)``, and ``@collective.zasync.task`` in the style of Celery. Bad input (a lambda,
a closure, an unpicklable argument, a context outside a site) is refused at once, in the
request, with a message that says what to do. Content passed as an argument is stored by
reference and followed when it is moved or renamed; deleting it fails its pending jobs at once.
