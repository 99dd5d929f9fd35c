Workers: ``zasync-worker -C zope.conf`` runs jobs in processes that serve no HTTP, by default
one per CPU the process may use (its CPU affinity and a container's CPU quota), restarts any
that dies, logs to files of its own beside the instance's (``zasync-worker-event.log``), and
stops gracefully on SIGTERM. An instance becomes a worker with ``ZASYNC_WORKER=1`` (containers)
or a worker ZCML file (plone.app.async's four file names). Each worker has an identity
(``ZASYNC_UUID``); a dead worker is noticed by a live one and its jobs run elsewhere; a worker
is woken by the commit that queues a job on ZEO, and polls every 50 ms on RelStorage. Settings
in ``<product-config collective.zasync>`` or ``ZASYNC_<SETTING>`` variables; a bad value, or a
comment after a value, stops the worker with a message that says why.
