"""The attributes of QueueRoot and Queue made on first use (core/queue.py's table). Not for add-ons.

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
