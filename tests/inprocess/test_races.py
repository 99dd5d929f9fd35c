"""Races between workers' commits, played by hand in the order that lost a job before its fix
(found by the simulation: tests/unit/test_simulation.py)."""

from collective.zasync.core.keys import waiting_key
from collective.zasync.core.keys import waits
from collective.zasync.core.lifecycle import requeue
from collective.zasync.interfaces import ACTIVE
from collective.zasync.worker import claiming
from collective.zasync.worker import filing
from tests.support.plaindatabase import PlainDatabase
from ZODB.POSException import ConflictError


class TestRaces(PlainDatabase):

    def test_a_job_given_back_while_the_finisher_drops_its_old_entry_still_waits(self):
        # b (not the finisher) claims the job: its waiting entry stays, for the finisher to delete.
        tm_b, root_b = self.connection()
        [job] = claiming.claim(root_b, root_b.workers["b"], 1, self.late)
        tm_b.commit()
        # At once: the finisher's pass deletes that entry, and b gives the job back.
        tm_finisher, root_f = self.connection()
        tm_giver, root_g = self.connection()
        filing.drop_taken(root_f.queues[""])
        requeue(root_g, root_g.queues[""].jobs[job.id])
        tm_finisher.commit()
        try:
            tm_giver.commit()  # (once: they wrote different objects, so both committed)
        except ConflictError:  # (now both write the tree: this may conflict, then b tries again)
            tm_giver.abort()
            requeue(root_g, root_g.queues[""].jobs[job.id])
            tm_giver.commit()
        entries, claims = self.where(job.id)
        self.assertEqual(claims, [])
        # Once lost (pending, in no tree): now it waits under a key of its own.
        self.assertEqual(len(entries), 1)
        _tm, root = self.connection()
        self.assertEqual(entries[0], waiting_key(root.queues[""].jobs[job.id]))

    def test_a_claim_while_its_worker_is_declared_dead_conflicts(self):
        for first in ("reaper", "claimer"):
            with self.subTest(committed_first=first):
                self.setUp()
                tm_r, root_r = self.connection()
                tm_c, root_c = self.connection()
                filing.take_back(root_r, root_r.workers["b"])  # b looks dead: it claims nothing here
                del root_r.workers["b"]
                claiming.claim(root_c, root_c.workers["b"], 1, self.late)  # ... but its dispatcher claims
                one, other = (tm_r, tm_c) if first == "reaper" else (tm_c, tm_r)
                one.commit()
                with self.assertRaises(ConflictError):  # once: both committed, the job in no place
                    other.commit()

    def test_a_worker_taken_back_files_its_whole_done_log(self):
        tm, root = self.connection()
        record = root.workers["b"]
        queue = root.queues[""]
        claimed = claiming.claim(root, record, 3, self.late)
        self.assertEqual(len(claimed), 3)
        for job in claimed:
            job.finish("done")
            job.complete()
        filing.file_completed(root, record)  # all three in b's done log, not filed yet
        # The first one seen running on b still: a pass stops reading the log there (its view
        # of the job would be older than the log's: filing.file_done_log) ...
        first = claimed[0]
        first.status, first.worker_uuid = ACTIVE, "b"
        record.claimed[first.id] = first
        self.assertTrue(filing.file_done_log(root, record))  # (something left for the next pass)
        # ... but b is declared dead: its record goes, so all of its log is filed now.
        filing.take_back(root, record)
        del root.workers["b"]
        tm.commit()
        _tm, root = self.connection()
        queue = root.queues[""]
        filed = {job.id for job in queue.completed.values()}
        for job in claimed[1:]:  # (once: the log was read up to the job seen running, then dropped)
            self.assertIn(job.id, filed)
        self.assertTrue(any(waits(key, job) for key, job in queue.waiting.items() if job.id == first.id))
