"""Job logs: how jobs travel between processes without two commits writing one object.

A JobLog has ONE writer: a request thread of one process (a queue's inbox),
or a worker's dispatcher (its done log: the jobs its threads finished). Its
readers (dispatchers filing it) never append to it: how far they have read is
kept in its ``mark``, a ReadMark that only readers write. The writer, every few appends, drops the
entries the mark says were read (reading the mark between costs a round trip
to the database, since every filing pass rewrites it).

So a queueing commit writes its own log and nothing another process writes
at the same time: nothing needs resolving, on a stock ZEO server (which cannot
import this package) or on RelStorage. Two dispatchers reading one log both
write its mark: one of them gets a ConflictError, retried inside the
dispatcher, and never files a job twice. Every append costs the same (the last
bucket of a BTree and the log itself), with 100 or 100,000 jobs unread. Not for add-ons.
"""

from BTrees.OOBTree import OOBTree
from collective.zasync.core.cards import read_card
from collective.zasync.core.trees import settle
from collective.zasync.core.uidindex import forget_read
from collective.zasync.defaults import PRUNE_EVERY
from collective.zasync.defaults import PRUNE_LIMIT
from datetime import datetime
from datetime import timezone
from persistent import Persistent

import itertools
import time


class ReadMark(Persistent):
    """How far dispatchers have read a JobLog; written by dispatchers only."""

    key = ""  # the last key read
    count = 0  # how many entries were read
    read_at = None  # when a dispatcher last read entries (time.time()); None: never


class JobLog(Persistent):
    """Jobs in the order one writer appended them, keyed by increasing strings."""

    closed = False  # set by a dispatcher that retires an idle log; a closed log takes no job
    uids = None  # an inbox's UID index (uidindex.py), written by its writer; made on first use

    def __init__(self, writer):
        self.writer = writer  # who may append (see writer_id())
        self.entries = OOBTree()  # key -> job
        self.count = 0  # entries ever appended
        self.last_key = ""
        self.written = None  # when the last entry was appended
        self.mark = ReadMark()

    def __repr__(self):
        return "<JobLog of %s: %d unread>" % (self.writer, self.unread_count())

    # -- the writer ----------------------------------------------------------------

    def append(self, key, job, card=None):
        """Add ``job`` under ``key``, which must sort after every key before it (``card``: its filing card)."""
        if self.closed:
            raise ValueError("Job log of %s is closed; the writer uses a new one." % self.writer)
        if key <= self.last_key:
            raise ValueError("Key %r does not sort after %r." % (key, self.last_key))
        if self.count % PRUNE_EVERY == 0:
            self.prune()
        self.entries[key] = job if card is None else (job, card)
        settle(self.entries)  # (pruned at the front, added at the end: see trees.settle)
        if self.uids is not None:
            settle(self.uids)  # (likewise, for the jobs of one item)
        self.last_key = key
        self.count += 1
        self.written = datetime.now(timezone.utc)

    def prune(self, limit=PRUNE_LIMIT):
        """Drop up to ``limit`` entries that dispatchers have read."""
        mark = self.mark.key
        if mark:
            for key in list(itertools.islice(self.entries.keys(max=mark), limit)):
                job, card = _split(key, self.entries.pop(key))
                forget_read(self, key, job, card.uids if card is not None else None)

    # -- dispatchers -------------------------------------------------------------------

    def unread(self, limit=None):
        """(key, job) pairs not read yet, oldest first."""
        return [(key, _job_of(value)) for key, value in self._unread_items(limit)]

    def unread_cards(self, limit=None):
        """(key, job, FilingCard or None) of the entries not read yet, oldest first (cards.py)."""
        return [(key, *_split(key, value)) for key, value in self._unread_items(limit)]

    def _unread_items(self, limit):
        items = self.entries.items(min=self.mark.key, excludemin=bool(self.mark.key))
        return itertools.islice(items, limit)

    def mark_read(self, pairs):
        """Record that the ``pairs`` (from unread() or unread_cards()) were filed."""
        if pairs:
            self.mark.key = pairs[-1][0]
            self.mark.count += len(pairs)
            self.mark.read_at = time.time()

    def unread_count(self):
        return self.count - self.mark.count

    def get_unread(self, key):
        """The job under ``key`` if it is not read yet, else None."""
        return _job_of(self.entries.get(key)) if key > self.mark.key else None


def _job_of(value):
    """The job of an entry's stored ``value``: a job, or (job, card) (cards.py)."""
    return value[0] if isinstance(value, tuple) else value


def _split(key, value):
    """(job, FilingCard or None) of an entry's stored ``value`` under ``key``."""
    return _job_of(value), read_card(value[1], key) if isinstance(value, tuple) else None
