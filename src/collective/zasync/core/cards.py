"""Filing cards: what filing a new job needs, stored with it in its inbox. Not for add-ons.

The request that queues a plain job (no batch, no dependencies, no recurrence, not about an
item created in the same transaction, whose oid comes at commit; its id is its inbox key)
stores its card beside it in the inbox entry (joblog.py): when it is due, its priority, its
index keys (indexes.py) and UIDs (uidindex.py), all known then and never changed before it
is filed. A dispatcher files the job from its card (lifecycle.file_from_card)
without loading the job: loading was most of what filing a backlog cost (a million
jobs, a million loads), and the claim loads the job anyway. The inbox's writer drops
the entry's UIDs from the card when it prunes the entry, again without loading the job.

A card is stored as a plain tuple of strings, numbers and None: no class of this
package in the inbox's records. One of another length (a later version's) is no card:
its job is loaded and filed as any other.
"""

from collections import namedtuple
from collective.zasync.core.indexes import item_key
from collective.zasync.core.indexes import user_key
from collective.zasync.core.keys import due_us
from collective.zasync.core.keys import waiting_key_at
from collective.zasync.core.priority import priority_of
from collective.zasync.core.uidindex import job_uids


FilingCard = namedtuple("FilingCard", "job_id waiting_key priority index_keys uids")

STORED_LENGTH = 7  # due (microseconds), claim token, priority, user, item, site, UIDs


def card_of(job, key):
    """The card to store for ``job`` under inbox ``key`` (a plain tuple), or None if filing it
    needs the job itself."""
    if job.batch_kind or job.depends_on or job.recurrence is not None:
        return None
    if job.id != key:
        return None  # a retried job, or the clock went back: rare, and lifecycle.unfiled looks for ids
    if (job.context_path is not None and job.context_oid is None) or (
            job.about_path is not None and job.about_oid is None):
        return None  # an item not stored yet: its oid, its key in by_item, comes at commit (client/items.py)
    return (due_us(job), job.claim_token or None, priority_of(job), user_key(job), item_key(job),
            job.site_path, tuple(job_uids(job)) or None)


def read_card(stored, key):
    """The FilingCard of the card ``stored`` under inbox ``key`` (the job's id); None for None or a
    card of another shape."""
    if not isinstance(stored, tuple) or len(stored) != STORED_LENGTH:
        return None
    when_us, claim_token, priority, user, item, site_path, uids = stored
    return FilingCard(key, waiting_key_at(when_us, key, claim_token), priority,
                      (("by_user", user), ("by_item", item), ("by_site", site_path)), uids or ())
