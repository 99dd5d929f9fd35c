"""collective.zasync: durable background jobs for Plone, queued in the ZODB.

Start with ``interfaces.py``: it is the contract of the package.
"""

# ``collective.zasync.transactional`` is the decorator (its module has the same name).
from collective.zasync.transactional import transactional  # noqa: E402,F401

# ``@collective.zasync.task``: a job function with its queueing options (tasks.py).
from collective.zasync.tasks import task  # noqa: E402,F401

# ZEO reuses ids of new objects after a server restart unless patched (see zeopatch.py).
from collective.zasync.zeopatch import forget_prefetched_oids_on_reconnect  # noqa: E402

forget_prefetched_oids_on_reconnect()
