"""A fix for ZEO's ClientStorage: forget the oids fetched in advance when reconnecting.

A ZEO client asks the server for new object ids 100 at a time and keeps the
unused ones (``ClientStorage._oids``) across a reconnection. A restarted ZEO
server knows only the oids that were committed, so it hands out the others
again, to other clients: two processes then store different new objects under
one oid. The later commit fails, with a ConflictError or with "ValueError: A
different object already has the same oid" when the other object is in its
cache; a job that hit it failed for good. This happened in our ZEO restart test.

Dropping the prefetched ids when the connection is (re)established makes the
next new object ask the server, whose counter is right. Applied once, when the
package is imported (every Zope instance, worker and ZEO server with
collective.zasync installed). Not for add-ons.
"""

from collective.zasync.worker.patching import patch_once

import logging


log = logging.getLogger("collective.zasync")


def forget_prefetched_oids_on_reconnect():
    """Patch ZEO.ClientStorage.ClientStorage.notify_connected (idempotent)."""
    try:
        from ZEO.ClientStorage import ClientStorage
    except ImportError:  # no ZEO, no problem
        return

    def forgetting(original):
        def notify_connected(self, conn, info):
            # Rebinding is atomic: new_oid() in another thread pops from the old list
            # or finds the new, empty one and asks the (reconnected) server.
            self._oids = []
            return original(self, conn, info)
        return notify_connected

    if patch_once(ClientStorage, "notify_connected", forgetting):
        log.debug("ZEO ClientStorage patched: prefetched oids are dropped on reconnect.")
