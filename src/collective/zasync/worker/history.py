"""What a job's transaction says in the ZMI's Undo and history views: the job and its user.
Not for add-ons.

A request's transaction is noted by Zope's publisher with the path and the
user (``ZPublisher.utils.recordMetaData``); a job's commit is noted the same
way, with the job instead of a path, so that Undo lists it beside the
requests of the same user.
"""

import transaction


def note_job(job, txn=None):
    """Note ``job`` and its queuing user on ``txn`` (the current transaction)."""
    txn = txn if txn is not None else transaction.get()
    txn.note("collective.zasync job %s: %s" % (job.id, job.describe()))
    if job.user_id is not None and job.userfolder_path is not None:
        # As the publisher does: the user folder's container, without the leading slash.
        path = job.userfolder_path.strip("/").rpartition("/")[0]
        txn.setUser(job.user_id, path)
