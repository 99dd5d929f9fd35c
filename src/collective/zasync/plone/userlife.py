"""Jobs follow their user's life: deleting a user ends their jobs, as deleting content does.

When a site's user folder deletes a user (PAS ``IPrincipalDeletedEvent``:
Plone's Users and Groups, ``plone.api.user.delete``), in the deleting
transaction, every job of that user in the queue database is marked
(``job.user_deleted``, its sub-jobs and callbacks too): pending and delayed
ones fail with "the user was deleted", recurring ones stop, running ones are
asked to stop, and their list of jobs ("My jobs") goes. A new account with
the same id is another user: it never sees them (api.get_job, My jobs), and
the worker never runs a marked job (worker/environment.py), as the old user or as it.
Users deleted otherwise (a Zope user folder without events, an LDAP server)
are found by the worker when a job of theirs runs: it fails. Not for add-ons.
"""

from collective.zasync import interfaces
from collective.zasync.client.admin import cancel
from collective.zasync.client.sites import find_site
from collective.zasync.core.calls import path_of
from collective.zasync.core.indexes import forget_user
from collective.zasync.core.indexes import user_key
from collective.zasync.core.queue import get_queue_root
from collective.zasync.plone.contentlife import fail_pending
from collective.zasync.plone.contentlife import stop_recurrence
from zope.component.hooks import getSite

import logging


log = logging.getLogger("collective.zasync")


class UserDeleted(LookupError):
    """The user who queued a job was deleted before the job ran."""


def principal_deleted(event):
    """IPrincipalDeletedEvent: end the jobs of the deleted user of the current site's user folder."""
    user_id = event.principal
    site = getSite()
    if not isinstance(user_id, str) or getattr(site, "_p_jar", None) is None:
        return
    site = find_site(site)
    userfolder = site.acl_users
    if userfolder.getUserById(user_id) is not None:
        return  # another plugin still has an account of that id: it was not this user folder's last
    root = get_queue_root(site._p_jar, create=False)
    if root is not None:
        end_jobs_of(root, (path_of(userfolder), user_id))


def end_jobs_of(root, key):
    """Mark, fail or stop every job of the user ``key`` (user folder path, id); return how many."""
    count = 0
    for queue in root.queues.values():
        for job in jobs_of(queue, key):
            end_job(queue, job, key)
            count += 1
        for recurrence in list(queue.recurring.values()):
            if recurrence.current is not None and user_key(recurrence.current) == key:
                stop_recurrence(queue, recurrence)
        forget_user(queue, key)
    if count:
        log.info("User %s of %s was deleted: %d of their jobs ended.", key[1], key[0], count)
    return count


def jobs_of(queue, key):
    """The jobs of ``queue`` queued by the user ``key``: filed ones (its index), and not filed yet."""
    index = queue.by_user
    tree = index.get(key) if index is not None else None
    filed = list(tree.values()) if tree is not None else []
    unfiled = [job for inbox in queue.inboxes.values() for _key, job in inbox.unread()
               if job.status == interfaces.PENDING and user_key(job) == key]
    return {job.id: job for job in filed + unfiled}.values()


def end_job(queue, job, key):
    """Mark ``job`` (and what runs as its user with it); fail it if pending, ask it to stop if running."""
    for part in (job, *job.subjobs, *job.callbacks):
        part.user_deleted = True
    if job.status == interfaces.PENDING:
        error = UserDeleted("the user was deleted: %r no longer exists in %s" % (key[1], key[0]))
        fail_pending(queue, job, error)
    elif job.status == interfaces.ACTIVE and not job.batch_kind:
        cancel(job)  # its next set_progress() or check_cancelled() stops it
