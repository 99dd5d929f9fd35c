"""collective.zasync: durable background jobs for Plone, queued in the ZODB.

Start with ``interfaces.py``: it is the contract of the package. Add-ons import
``collective.zasync.api``, ``collective.zasync.interfaces``, ``collective.zasync.testing``
and the names below; the layers below them (core, client, worker, browser, restapi, plone,
dev) are drawn in docs/design.md.
"""

# Old module paths (stored in databases, documented for add-ons) load what they named,
# before anything is unpickled (moved.py).
from collective.zasync import moved

moved.install()

# ZEO reuses ids of new objects after a server restart unless patched (worker/zeopatch.py).
from collective.zasync.worker.zeopatch import forget_prefetched_oids_on_reconnect  # noqa: E402

forget_prefetched_oids_on_reconnect()

# RelStorage's local cache can hand a thread a state older than its view, and its commits on
# PostgreSQL truncate three tables and scan object_state, unless patched
# (worker/relstoragepatch.py).
from collective.zasync.worker.relstoragepatch import empty_staging_tables_in_commit  # noqa: E402
from collective.zasync.worker.relstoragepatch import remove_superseded_states  # noqa: E402

remove_superseded_states()
empty_staging_tables_in_commit()

# -- the public names (each also where the documentation gives it) ---------------------------
from collective.zasync import api  # noqa: E402
from collective.zasync import interfaces  # noqa: E402
from collective.zasync.api import check_cancelled  # noqa: E402
from collective.zasync.api import checkpoint  # noqa: E402
from collective.zasync.api import Failure  # noqa: E402
from collective.zasync.api import get_checkpoint  # noqa: E402
from collective.zasync.api import get_job  # noqa: E402
from collective.zasync.api import get_progress  # noqa: E402
from collective.zasync.api import get_service  # noqa: E402
from collective.zasync.api import JobCancelled  # noqa: E402
from collective.zasync.api import makeJob  # noqa: E402
from collective.zasync.api import set_progress  # noqa: E402
from collective.zasync.client.task import task  # noqa: E402
from collective.zasync.client.transactional import transactional  # noqa: E402
from collective.zasync.interfaces import IAsyncService  # noqa: E402


__all__ = [
    # decorators for job functions and scripts
    "task", "transactional",
    # queueing and finding jobs, in a request or a script
    "IAsyncService", "get_service", "makeJob", "get_job", "get_progress",
    # what a running job calls
    "set_progress", "check_cancelled", "JobCancelled", "checkpoint", "get_checkpoint",
    # what a failed job leaves in job.result
    "Failure",
    # the modules add-ons import (and collective.zasync.testing, for tests)
    "api", "interfaces",
]
