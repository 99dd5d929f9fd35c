"""Queue ``mark`` jobs for tests/cluster/test_chaos.py, surviving a ZEO restart.

Usage: zconsole run etc/zope.conf chaos_queue.py SITE_ID USER PREFIX COUNT PER_TRANSACTION DIRECTORY

Queues ``sample_jobs.mark_outside_too`` jobs (their outside effects go to
DIRECTORY) with what a client queueing during chaos needs: several jobs per
transaction, and a transaction that fails (the storage server went away, a
conflict) is tried again. A commit interrupted by the restart is *in doubt*:
before trying again, the script looks whether its jobs are in the queue, so
that an entry is never queued twice. Prints "queued <id>" for each job, one
per line, as each transaction commits. Not a test module (its name does not
start with "test").
"""

from tests.support import sample_jobs
from tests.support.queue_jobs import open_site_as

import os
import sys
import time
import transaction


RETRIES = os.environ.get("ZASYNC_CHAOS_CONFLICT_RETRIES")  # the jobs' conflict retries; unset: the site's


def retrying(step, what, seconds=180):
    """Run ``step()`` until it does not raise (ZEO down, conflicts)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return step()
        except Exception as exc:
            try:
                transaction.abort()
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise
            print("retrying %s after %r" % (what, exc), file=sys.stderr, flush=True)
            time.sleep(0.5)


def queue_jobs(app, site_id, user_id, prefix, count, per_transaction, directory):
    # (the ZEO restart may come while this client still starts up)
    site, service = retrying(lambda: open_site_as(app, site_id, user_id), "opening the site")
    for start in range(0, count, per_transaction):
        numbers = range(start, min(count, start + per_transaction))
        batch = []

        def queue_batch():
            transaction.begin()
            del batch[:]
            for n in numbers:
                job = service.queueJob(sample_jobs.mark_outside_too, site, "%s-%d" % (prefix, n), directory)
                if RETRIES is not None:  # fewer: more jobs run out of them and run alone in the cluster
                    job.max_retries = int(RETRIES)
                batch.append(job.id)
            transaction.commit()

        def committed():
            # After a failed commit: was it in fact committed (in doubt)?
            transaction.begin()
            queue = service.getQueues()[""]
            found = [queue.get(job_id) is not None for job_id in batch]
            transaction.abort()
            return all(found) if batch else False

        while True:
            try:
                queue_batch()
                break
            except Exception as exc:
                try:
                    transaction.abort()
                except Exception:
                    pass
                print("commit of %s-%d.. failed: %r" % (prefix, start, exc), file=sys.stderr, flush=True)
                time.sleep(0.5)
                if batch and retrying(committed, "the in-doubt check"):
                    print("... it was committed after all", file=sys.stderr, flush=True)
                    break
        for job_id in batch:  # as they are queued: the soak sees that this client is under way
            print("queued", job_id)
        sys.stdout.flush()


if __name__ == "__main__":
    site_id, user_id, prefix, count, per_transaction, directory = sys.argv[sys.argv.index("run") + 3 :]
    queue_jobs(app, site_id, user_id, prefix, int(count), int(per_transaction), directory)  # noqa: F821
