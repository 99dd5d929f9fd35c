The durable job queue and ``IAsyncService`` (plone.app.async's names): jobs run after commit as the
queuing user, with their ZODB effects committed once together with their result; delays, named
queues, quotas, serial and parallel batches, callbacks, ``IJobSuccess``/``IJobFailure``,
ConflictError retries, clear errors for bad input at queue time, and the test layers.
