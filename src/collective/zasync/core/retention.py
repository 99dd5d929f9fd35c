"""What the database keeps no longer: finished jobs past the retention, idle inboxes. Not for add-ons.

A worker's dispatcher runs these now and then (worker/dispatcher.py), a bounded
batch per transaction.
"""

from collective.zasync.core.keys import finished_key_at
from collective.zasync.core.places import finished_tree
from collective.zasync.core.places import forget_finished
from collective.zasync.core.totals import count_left
from collective.zasync.core.trees import prefetch
from collective.zasync.defaults import IDLE_INBOX
from collective.zasync.defaults import RETENTION_BATCH

import itertools
import time


def remove_old_jobs(root, default_days):
    """Remove up to RETENTION_BATCH finished jobs older than the retention."""
    days = root.retention_days if root.retention_days is not None else default_days
    first_key = finished_key_at(time.time() - days * 86400)
    count = 0
    for queue in root.queues.values():
        for failed in (False, True):
            tree, length = finished_tree(queue, failed)
            # Only the entries of this batch are read: a backlog of a million
            # expired jobs costs no more per transaction than one of a thousand.
            pairs = list(itertools.islice(tree.items(min=first_key), RETENTION_BATCH - count))
            # Unindexing reads each job: ask for them all at once (ZEO: one pipelined
            # request, not a round trip per job; twice as fast for a batch).
            prefetch([job for _key, job in pairs])
            for key, job in pairs:
                del tree[key]
                forget_finished(queue, key, job)
            length.change(-len(pairs))
            count_left(queue, failed, len(pairs))
            count += len(pairs)
    return count


def retire_all_idle_inboxes(root, now):
    """retire_idle_inboxes for every queue of ``root``."""
    for queue in root.queues.values():
        retire_idle_inboxes(queue, now)


def retire_idle_inboxes(queue, now):
    """Drop inboxes that were read to the end and are idle; return how many.

    Writing ``closed`` makes a writer that appends at this very moment
    conflict with us instead of appending to a dropped log.
    """
    retired = 0
    for writer, log in list(queue.inboxes.items()):
        if log.unread_count() or log.written is None:
            continue
        if (now - log.written).total_seconds() > IDLE_INBOX:
            log.closed = True
            del queue.inboxes[writer]
            queue.inbox_count.change(-1)
            retired += 1
    return retired
