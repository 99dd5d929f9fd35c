``zasync-worker -C etc/zope.conf [--processes N] [--threads M]`` runs jobs without serving HTTP
(no worker ZCML needed): a supervisor keeps N worker processes running (default: one per CPU),
each with its own identity (the UUID file with ``.N`` appended), restarts any that dies and stops
them gracefully on SIGTERM or SIGINT.
