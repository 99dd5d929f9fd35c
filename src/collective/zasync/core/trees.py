"""The attributes of QueueRoot and Queue made on first use (core/queue.py's table), and
reading many stored objects at once. Not for add-ons.

Databases written before such an attribute existed lack it: its class
attribute is None, and whoever writes it first makes it here, so that
no module adds attributes of its own.
"""

from BTrees.OOBTree import OOBTree
from BTrees.OOBTree import OOTreeSet


MADE_ON_FIRST_USE = {
    "blocked": OOBTree, "cancel_requests": OOBTree, "set_aside": OOBTree, "profile_recurring": OOBTree,
    "prioritized": OOBTree, "by_uid": OOBTree, "by_user": OOBTree, "by_item": OOBTree, "by_site": OOBTree,
    "ended_unfiled": OOTreeSet,
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


def settle(tree):
    """Make the commit store ``tree`` with a reference to its one bucket, never a copy of it.

    A BTree whose only bucket has no oid is stored with that bucket's items inline, in its
    own record. When one transaction empties a tree's old buckets (taking from one end) and
    makes a new one (adding at the other: an inbox, a done log, ``waiting``, the finished
    jobs), the emptied buckets are stored too, and the last one's link to the next bucket
    gives the new bucket an oid and a record of its own, in the same commit, after the tree
    stored its items inline. From then on the writer changes that bucket's record, and every
    other connection reads the tree's stale inline copy: what the writer adds is lost to
    them (BTrees 6.5; ``tests/unit/test_trees.py`` plays it). A dispatcher read a done log
    that way and marked entries read that it never saw: completed jobs filed nowhere. Giving
    the bucket its oid first makes the tree refer to it.
    """
    first = getattr(tree, "_firstbucket", None)
    jar = tree._p_jar
    if first is not None and first._next is None and first._p_oid is None and jar is not None:
        jar.add(first)
        tree._p_changed = True  # (stored again: with the reference, not its inline copy)


def settle_changed(conn):
    """``settle`` every BTree changed in ``conn``'s transaction (and its other databases')."""
    for each in set(getattr(conn, "connections", {}).values()) | {conn}:
        for obj in list(getattr(each, "_registered_objects", ())):
            if hasattr(obj, "_firstbucket"):
                settle(obj)
