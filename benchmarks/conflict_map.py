"""Which queue structure a conflicting object belongs to: oid -> name.

A dispatcher logs the objects its transactions conflicted on (oids, when it
stops); the benchmark names them by walking the queue database: every node
and bucket of the queues' BTrees, the inboxes, the worker records. Objects
gone by the end of a run (a bucket emptied by claims) are looked for in the
same database as it was at earlier moments of the run (a historical
connection), and anything still unnamed is named by its class.
"""

from BTrees.Length import Length
from collective.zasync import interfaces
from persistent import Persistent

import re


def oid_hex(oid):
    return "0x%x" % int.from_bytes(oid, "big")


def tree_nodes(tree):
    """Every persistent node (the tree, its inner nodes, its buckets) of a BTree or TreeSet."""
    yield tree
    state = tree.__getstate__()
    if not state or len(state) < 2:
        return  # empty, or one bucket kept inside the tree itself
    children = state[0][::2]
    for child in children:
        if type(child) is type(tree):
            yield from tree_nodes(child)
        else:
            yield child


def _name(names, obj, label):
    oid = getattr(obj, "_p_oid", None)
    if oid is not None:
        names.setdefault(oid_hex(oid), label)


def _walk(names, obj, label):
    """Name ``obj`` and, if it is a BTree, its nodes (``label (node)`` / ``label (bucket)``)."""
    if hasattr(obj, "__getstate__") and hasattr(obj, "keys") and hasattr(obj, "_p_oid") and \
            type(obj).__module__.startswith("BTrees"):
        for node in tree_nodes(obj):
            kind = "tree" if node is obj else ("node" if type(node) is type(obj) else "bucket")
            _name(names, node, "%s (%s)" % (label, kind))
    else:
        _name(names, obj, label)


def queue_names(queue, prefix, names):
    queue._p_activate()
    _name(names, queue, prefix.rstrip("."))
    for attr, value in sorted(vars(queue).items()):
        label = prefix + attr
        if attr in ("by_user", "by_content", "prioritized"):
            _walk(names, value, label)
            for key, inner in value.items():
                _walk(names, inner, "%s[%s]" % (label, key if attr == "prioritized" else "*"))
        elif attr == "inboxes":
            _walk(names, value, label)
            for inbox in value.values():
                _name(names, inbox, "inbox")
                _walk(names, inbox.entries, "inbox.entries")
                _name(names, inbox.mark, "inbox.mark")
                if getattr(inbox, "uids", None) is not None:
                    _walk(names, inbox.uids, "inbox.uids")
        elif isinstance(value, (Persistent, Length)):
            _walk(names, value, label)


def structure_names(conn, names=None):
    """oid (hex) -> name of every queue structure in the database of ``conn``."""
    names = {} if names is None else names
    root = conn.root()[interfaces.KEY]
    _name(names, root, "QueueRoot")
    _walk(names, root.queues, "queues")
    _walk(names, root.workers, "workers")
    for uuid, record in root.workers.items():
        _name(names, record, "worker record")
        _walk(names, record.claimed, "worker.claimed")
        _name(names, record.ping, "worker.ping")
    for name, queue in root.queues.items():
        queue_names(queue, "queue." if name == "" else "queues[%r]." % name, names)
    return names


def conflicted_oids(log_text):
    """oid (hex) -> conflicts, from the "conflicted on objects" lines a worker's log holds."""
    import ast

    found = {}
    for text in re.findall(r"Worker \S+ conflicted on objects (\{.*?\})\.", log_text):
        for oid, count in ast.literal_eval(text).items():
            found[oid] = found.get(oid, 0) + count
    return found


def name_of(conn, oid, names):
    """The structure name of ``oid``; for another object, the class of what is stored there."""
    if oid in names:
        return names[oid]
    try:
        obj = conn.get(int(oid, 16).to_bytes(8, "big"))
        obj._p_activate()
    except Exception:
        return "gone"
    return type(obj).__name__
