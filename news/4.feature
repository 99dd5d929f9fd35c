Workers: a dispatcher per Zope process woken by ZODB invalidations, instance and worker ZCML for
one or two databases, worker identity from ``ZASYNC_UUID``, settings from product-config,
dead-worker recovery, clean SIGTERM, ZEO restarts, retention of finished jobs, a job time limit,
and ``zasync-cluster`` to write and run a pip-only ZEO cluster.
An unknown or malformed setting in ``<product-config collective.zasync>`` stops the worker with
a message that lists the valid settings.
