"""Job priorities: which due job of a queue starts first.

Among the DUE jobs of a queue, a higher priority starts first; jobs of equal
priority start in the queue's order (when they became due, then queueing
order). A delayed job waits for its time whatever its priority. A queue
with a concurrency (the default queue) starts its jobs "in order": this
order, so a due job of higher priority goes ahead of those due before it.

Each priority present in a queue has a waiting BTree of its own, keyed as
always by due time and id: priority 0 (every job of a database written
before priorities existed) is ``queue.waiting``, the others are in
``queue.prioritized`` (priority -> BTree). A claim looks at the due keys of
each tree, highest priority first: with the few priorities a site uses, it
stays O(log n) at any depth.

Priorities are strict (no aging): a low-priority job waits as long as
higher-priority jobs are due in its queue. Work that must not starve goes to
a queue of its own (queues take turns) or gets a ``begin_by``. Not for add-ons
(``priority=`` is the service's).
"""

from BTrees.OOBTree import OOBTree
from collective.zasync.core.keys import waits
from collective.zasync.core.trees import made

import heapq


MIN_PRIORITY = -10
MAX_PRIORITY = 10
DEFAULT_PRIORITY = 0


def check_priority(priority):
    """``priority`` if it is a whole number from MIN_PRIORITY to MAX_PRIORITY; else raise."""
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError("A job's priority is a whole number from %d to %d (higher starts first; "
                        "default %d), not %r." % (MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY, priority))
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError("A job's priority is from %d to %d (higher starts first; default %d), "
                         "not %d." % (MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY, priority))
    return priority


def priority_of(job):
    """The job's priority; 0 for jobs stored before priorities existed."""
    return getattr(job, "priority", DEFAULT_PRIORITY) or DEFAULT_PRIORITY


def tree_for(queue, priority, create=False):
    """The waiting BTree of ``priority`` in ``queue`` (None if absent and not ``create``)."""
    if priority == DEFAULT_PRIORITY:
        return queue.waiting
    if queue.prioritized is None and not create:
        return None
    trees = made(queue, "prioritized")
    tree = trees.get(priority)
    if tree is None and create:
        tree = trees[priority] = OOBTree()
    return tree


def waiting_trees(queue):
    """(priority, BTree) pairs of ``queue``, highest priority first."""
    trees = [(DEFAULT_PRIORITY, queue.waiting)]
    prioritized = queue.prioritized
    if prioritized is not None:
        trees.extend(prioritized.items())
    return sorted(trees, key=lambda pair: -pair[0])


def waiting_jobs(queue):
    """The filed jobs of ``queue`` to claim, in the order they will be claimed (due ones by priority)."""
    for _priority, tree in waiting_trees(queue):
        yield from (job for key, job in tree.items() if waits(key, job))


def due_items(queue, due):
    """(priority, key, job) of the due jobs of ``queue``, in the order they start. Lazy."""
    for priority, tree in waiting_trees(queue):
        for key, job in tree.items(max=due):
            yield priority, key, job


def due_jobs(queue, due):
    """The due jobs of ``queue``, in the order they start. Lazy."""
    return (job for _priority, _key, job in due_items(queue, due))


def delayed_jobs(queue, due):
    """The delayed jobs of ``queue``, in the order they become due. Lazy."""
    streams = [tree.items(min=due) for _priority, tree in waiting_trees(queue)]
    return (job for _key, job in heapq.merge(*streams, key=lambda item: item[0]))


def count_delayed(queue, due):
    """How many jobs of ``queue`` are not due yet (delayed jobs are few)."""
    return sum(len(tree.keys(min=due)) for _priority, tree in waiting_trees(queue))


def first_delayed_key(queue, due):
    """The key of the first delayed job of ``queue``, or None."""
    # next(iter()), not len(): the length of a BTree range walks its buckets.
    firsts = (next(iter(tree.keys(min=due)), None) for _priority, tree in waiting_trees(queue))
    return min((key for key in firsts if key is not None), default=None)
