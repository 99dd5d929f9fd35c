"""A job thread: runs the claimed jobs its dispatcher hands out, until told to stop. Not for
add-ons.

Every job it takes is reported back exactly once, when it is done with (``settled``): its
commit is done, or it will not run here. Until then it counts among the worker's claimed jobs
(Holdings.busy), so that the dispatcher's pass never takes it for an orphan. A job whose run
is over but whose commit waits for its group's (worker/grouping.py) no longer needs a thread:
the dispatcher claims the next jobs meanwhile (Holdings.finishing).
"""

from collective.zasync.worker.runner import JobRunner

import logging
import time


log = logging.getLogger("collective.zasync")


class JobThread:
    """One of a dispatcher's job threads: ``serve`` is its life."""

    def __init__(self, dispatcher, slot):
        self.dispatcher = dispatcher
        self.holdings = holdings = dispatcher.holdings
        settings = dispatcher.settings
        hand_over = holdings.hand_over if settings.group_commit else None
        self.runner = JobRunner(dispatcher.db, dispatcher.uuid, settings.max_retries, slot, hand_over,
                                dispatcher.gate, dispatcher.turns, done=self)
        self.taken = {}  # job oid -> claim token: taken from the work queue, not settled yet
        self.waiting = set()  # of those, the oids whose run is over and whose group's commit waits

    def serve(self):
        """Run what the loop hands out until told to stop."""
        while True:
            item = self.holdings.work.get()
            if item is None:
                return
            self.take(item)
            try:
                self.runner.run(*item, more=self.more)
            except BaseException:
                # Nothing may end this thread while the worker counts its jobs as held; a job
                # left claimed is given back by the next pass (release_orphans).
                log.exception("Worker %s: job %r ended its thread's run abnormally.",
                              self.dispatcher.uuid, item[0])
            for oid, token in list(self.taken.items()):  # (only after an abnormal end)
                self.settled(oid, token)

    def more(self):
        """The next claimed job waiting for a thread, taken; or None."""
        item = self.holdings.next_waiting()
        if item is not None:
            self.take(item)
        return item

    def take(self, item):
        oid, token = item
        self.taken[oid] = token
        self.holdings.running_since[oid] = time.time()

    def finished(self, oid, token, seconds, settled):
        """The runner ran job ``oid`` for ``seconds``; ``settled``: it is done with, else it
        waits for its group's commit."""
        holdings = self.holdings
        holdings.running_since.pop(oid, None)
        holdings.ran(seconds)
        if settled:
            self.settled(oid, token)
        else:
            self.waiting.add(oid)
            holdings.finishing_more(1)
            self.claim_more()

    def settled(self, oid, token):
        """Job ``oid`` is done with: committed, or it will not run here."""
        if self.taken.pop(oid, None) is None:
            return
        self.holdings.running_since.pop(oid, None)
        if oid in self.waiting:
            self.waiting.discard(oid)
            self.holdings.finishing_more(-1)
        self.holdings.release(oid, token)
        self.claim_more()

    def claim_more(self):
        # Claim more when the jobs claimed ahead are down to one per thread: the pass runs
        # while those do, so no thread waits for it; what finished meanwhile is filed by that
        # pass, several jobs in one commit.
        if self.dispatcher.hungry():
            self.dispatcher.wakeup.set()
