"""Queue jobs one per transaction, as requests do, and count the ConflictErrors they meet.

Usage: zconsole run etc/zope.conf queue_counting_conflicts.py SITE_ID USER PREFIX COUNT

Each transaction queues one ``mark`` job; a commit that raises ConflictError
is retried as Zope's publisher retries a request (abort, queue again), and
counted. Prints one JSON line: {"ids": [...], "conflicts": N, "seconds": S}.
Not a test module (its name does not start with "test").
"""

from tests.support import sample_jobs
from tests.support.queue_jobs import open_site_as
from ZODB.POSException import ConflictError

import json
import sys
import time
import transaction


def queue_jobs(app, site_id, user_id, prefix, count):
    site, service = open_site_as(app, site_id, user_id)
    ids, conflicts = [], 0
    started = time.monotonic()
    for n in range(count):
        while True:
            transaction.begin()
            job = service.queueJob(sample_jobs.mark, site, "%s-%d" % (prefix, n))
            try:
                transaction.commit()
                break
            except ConflictError:
                transaction.abort()
                conflicts += 1
        ids.append(job.id)
    return {"ids": ids, "conflicts": conflicts, "seconds": time.monotonic() - started}


if __name__ == "__main__":
    site_id, user_id, prefix, count = sys.argv[sys.argv.index("run") + 3:]
    print(json.dumps(queue_jobs(app, site_id, user_id, prefix, int(count))))  # noqa: F821
    sys.stdout.flush()
