Storages: a stock ZEO server (ZEO alone, as in Plone's official image) needs no code of
collective.zasync: every structure of the queue has one writer, so queueing never conflicts and
costs the same with 100 or 100,000 jobs waiting. Every ZEO configuration shipped (the pip-only
cluster, ``buildout.cfg``, the compose file) sets ``client-conflict-resolution``, which any
Plone site on such a server needs. RelStorage on PostgreSQL (the ``relstorage`` extra), the
queue in a database of its own (``multi_db_*.zcml``), and a fix for ZEO clients that reused
object ids after a server restart. A site that ran a development version (profile version
1000) keeps its jobs: the upgrade step, or the first worker, moves them.
