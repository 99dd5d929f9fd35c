"""Queue one checkpointed import job from a client process (test_checkpoint's kill test).

Usage: zconsole run etc/zope.conf queue_import.py SITE_ID USER COUNT EVERY HOLD_AT
Prints the job id.
"""

from tests.support import content_jobs
from tests.support.queue_jobs import open_site_as

import sys
import transaction


if __name__ == "__main__":
    site_id, user_id, count, every, hold_at = sys.argv[sys.argv.index("run") + 3 :]
    site, service = open_site_as(app, site_id, user_id)  # noqa: F821
    content_jobs.prepare_import(site)
    transaction.commit()
    job = service.queueJob(content_jobs.import_items, site, int(count), int(every), int(hold_at))
    transaction.commit()
    print(job.id)
