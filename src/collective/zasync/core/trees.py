"""The attributes of QueueRoot and Queue made on first use (core/queue.py's table), and
reading many stored objects at once. Not for add-ons.

Databases written before such an attribute existed lack it: its class
attribute is None, and whoever writes it first makes it here, so that
no module adds attributes of its own.
"""

from BTrees.OOBTree import OOBTree


MADE_ON_FIRST_USE = {
    "blocked": OOBTree, "cancel_requests": OOBTree, "set_aside": OOBTree, "profile_recurring": OOBTree,
    "prioritized": OOBTree, "by_uid": OOBTree, "by_user": OOBTree, "by_item": OOBTree, "by_site": OOBTree,
}


def made(owner, name, factory=None):
    """``owner.<name>``, made now if it is None (with ``factory``, else its tree)."""
    value = getattr(owner, name)
    if value is None:
        value = (factory or MADE_ON_FIRST_USE[name])()
        setattr(owner, name, value)
    return value


def prefetch(objects):
    """Ask the storage for the ghosts among ``objects`` at once (ZEO: one pipelined request,
    not one round trip each); filing and the retention read jobs by the hundred."""
    ghosts = [obj for obj in objects if obj._p_changed is None and obj._p_jar is not None]
    if ghosts:
        ghosts[0]._p_jar.prefetch(ghosts)
