"""zasync: the jobs of a site from the command line (as ``rq info`` or ``celery inspect``).

    zasync status -C etc/zope.conf [--site Plone] [--json]
    zasync list   -C etc/zope.conf [--queue NAME] [--state failed] [--limit 50] [--json]
    zasync show   -C etc/zope.conf JOB_ID [--json]
    zasync retry  -C etc/zope.conf JOB_ID [JOB_ID ...] [--yes]
    zasync cancel -C etc/zope.conf JOB_ID [JOB_ID ...] [--yes]
    zasync purge  -C etc/zope.conf --state failed|completed [--queue NAME] [--yes]
    zasync smoke  -C etc/zope.conf [--user admin] [--queue NAME] [--timeout 60]

It opens the instance's databases as ``zconsole`` does (a FileStorage must
not be in use by a running instance: use it on ZEO or RelStorage, or stop
the instance), never runs jobs itself, and reads and acts through
client/reading.py and client/admin.py, as the control panel does: on the jobs of the
site ``--site`` only (sites may share the queue database). A wrong site,
queue or job id ends with exit code 1 and a message; a bad command line with 2.
The console script ``zasync`` (setup.py); not for add-ons.
"""

from collective.zasync.client import admin
from collective.zasync.client import reading
from collective.zasync.client import smoke
from collective.zasync.client.metrics import oldest_due_age
from collective.zasync.core.calls import path_of
from collective.zasync.core.job import state_name
from collective.zasync.defaults import PAGE_SIZE

from ZODB.POSException import ConflictError

import argparse
import json
import os
import sys
import transaction


class CliError(Exception):
    """A site, queue or job that does not exist, or an action refused: exit code 1."""


def common_options():
    """The options every verb takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-C", "--config", required=True, metavar="ZOPE_CONF",
                        help="the instance's zope.conf")
    common.add_argument("--site", default="Plone", metavar="PATH",
                        help="the Plone site's path in Zope (default: %(default)s)")
    common.add_argument("--json", action="store_true", help="print JSON instead of text")
    return common


def confirm_option(parser):
    parser.add_argument("-y", "--yes", action="store_true", help="do it without asking")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="zasync", description="The background jobs of a Plone site: look at them, retry, "
        "cancel or remove them.", epilog="zasync VERB --help describes each verb.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    common = [common_options()]
    verbs.add_parser("status", parents=common, help="queues with their jobs counted by state, workers",
                     description="Every queue with its jobs counted by state, the workers, and how "
                     "long the longest-waiting due job has waited.")
    listing = verbs.add_parser("list", parents=common, help="the jobs of a queue in a state",
                               description="The jobs of a queue in a state, newest first for "
                               "finished ones, in claiming order for pending ones.")
    listing.add_argument("--queue", default="", metavar="NAME", help="the queue (default: the default queue)")
    listing.add_argument("--state", default="failed", choices=reading.STATES,
                         help="the jobs' state (default: %(default)s)")
    listing.add_argument("--limit", type=int, default=PAGE_SIZE, metavar="N",
                         help="at most N jobs (default: %(default)s)")
    show = verbs.add_parser("show", parents=common, help="everything about one job",
                            description="One job: what it calls, as whom, its arguments, result or "
                            "traceback.")
    show.add_argument("job_id", metavar="JOB_ID")
    for verb, what in (("retry", "queue failed jobs again (as the user who queued them)"),
                       ("cancel", "cancel pending or delayed jobs; ask running ones to stop")):
        action = verbs.add_parser(verb, parents=common, help=what, description=what.capitalize() + ".")
        action.add_argument("job_ids", nargs="+", metavar="JOB_ID")
        confirm_option(action)
    purge = verbs.add_parser("purge", parents=common, help="remove every failed (or completed) job of a queue",
                             description="Remove every failed (or completed) job of a queue for good.")
    purge.add_argument("--queue", default="", metavar="NAME", help="the queue (default: the default queue)")
    purge.add_argument("--state", required=True, choices=reading.FINISHED_STATES)
    confirm_option(purge)
    check = verbs.add_parser("smoke", parents=common, help="queue a harmless job and wait until a worker ran it",
                             description="Queue a harmless job (it writes nothing) as --user, at the highest "
                             "priority, and wait until a worker has run it: exit 0 if it did, as that user; "
                             "1 if not (the job is then cancelled).")
    check.add_argument("--user", default="admin", metavar="NAME",
                       help="the user the job runs as, of the site or the Zope root (default: %(default)s)")
    check.add_argument("--queue", default="", metavar="NAME", help="the queue (default: the default queue)")
    check.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                       help="how long to wait for a worker (default: %(default)s)")
    return parser


def open_site(config, site_path):
    """Load Zope from ``config`` as zconsole does; return the Plone site at ``site_path``."""
    if not os.path.isfile(config):
        raise CliError("cannot read the Zope configuration %s (-C)" % config)
    os.environ["ZASYNC_DISABLE"] = "1"  # an instance with the worker ZCML: no worker here
    os.environ.pop("ZASYNC_WORKER", None)
    from AccessControl.SecurityManagement import newSecurityManager
    from AccessControl.users import system
    from plone.base.interfaces import IPloneSiteRoot
    from Testing.makerequest import makerequest
    from zope.component.hooks import setSite
    from zope.globalrequest import setRequest
    from Zope2.Startup.run import make_wsgi_app

    import Zope2

    import zc.lockfile

    try:
        make_wsgi_app({}, config)
    except zc.lockfile.LockError as error:
        raise CliError("the database of %s is in use (%s): a FileStorage opens in one process "
                       "only; stop the instance, or use ZEO or RelStorage" % (config, error)) from None
    app = makerequest(Zope2.app())
    app.REQUEST["PARENTS"] = [app]
    setRequest(app.REQUEST)
    newSecurityManager(None, system)
    site = app.unrestrictedTraverse(site_path.strip("/"), None)
    if site is None or not IPloneSiteRoot.providedBy(site):
        sites = [obj.getId() for obj in app.objectValues() if IPloneSiteRoot.providedBy(obj)]
        raise CliError("no Plone site at /%s (--site); the sites of %s: %s" % (
            site_path.strip("/"), config, ", ".join(sites) or "none"))
    setSite(site)
    return site


def get_queue(root, name):
    queue = root.queues.get(name)
    if queue is None:
        names = ", ".join(repr(name) for name in root.queues.keys())
        raise CliError("no queue %r (--queue); the queues: %s ('' is the default queue)" % (name, names))
    return queue


def get_jobs(root, job_ids, site):
    jobs = [admin.find_job(root.queues, job_id, site_path(site)) for job_id in job_ids]
    missing = [job_id for job_id, job in zip(job_ids, jobs) if job is None]
    if missing:
        raise CliError("no job %s in any queue of the site %s (removed, of another site, or a "
                       "mistyped id?)" % (", ".join(missing), site_path(site)))
    return jobs


def site_path(site):
    return path_of(site)


def confirm(args, question):
    """True if --yes, or the user answers y; otherwise say that nothing was done."""
    if args.yes:
        return True
    sys.stderr.write("%s [y/N] " % question)  # stdout stays the output (--json)
    sys.stderr.flush()
    try:
        answer = input()
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("Nothing done (answer y, or pass --yes).", file=sys.stderr)
    return False


def commit(note):
    """Commit the action with a note in the undo log."""
    transaction.get().note(note)
    transaction.commit()


# -- the verbs: each returns what to print (a JSON-able value) and its text -----------------


def do_status(args, site, root):
    data = {
        "site": site_path(site),
        "queues": {name: reading.queue_counts(root, queue, site_path=site_path(site))
                   for name, queue in root.queues.items()},
        "workers": [reading.worker_info(worker) for worker in root.workers.values()],
    }
    data["oldest_due_job_waited_seconds"] = round(oldest_due_age(root, site_path=site_path(site)), 1)
    lines = ["Site %s" % data["site"], "%-20s %s" % ("QUEUE", " ".join("%9s" % s.upper() for s in reading.STATES))]
    for name, counts in data["queues"].items():
        lines.append("%-20s %s" % (name or "(default)", " ".join("%9d" % counts[s] for s in reading.STATES)))
    alive = [worker for worker in data["workers"] if worker["alive"]]
    lines.append("Workers: %d alive, %d dead" % (len(alive), len(data["workers"]) - len(alive)))
    for worker in data["workers"]:
        lines.append("  %s  %s pid %s  %d/%d threads busy  %s, last ping %s" % (
            worker["uuid"], worker["host"], worker["pid"], min(worker["active"], worker["threads"]),
            worker["threads"], "alive" if worker["alive"] else "DEAD", reading.isoformat(worker["last_ping"])))
    lines.append("Longest wait of a due job: %.1f s" % data["oldest_due_job_waited_seconds"])
    return data, "\n".join(lines)


def do_list(args, site, root):
    queue = get_queue(root, args.queue)
    jobs, more = reading.page(reading.jobs_in_state(root, queue, args.state, site_path=site_path(site)),
                              0, max(args.limit, 0))
    data = [reading.job_summary(job) for job in jobs]
    lines = ["%-22s %-9s %-25s %-12s %s" % ("ID", "STATE", "QUEUED", "USER", "WHAT")]
    for job in data:
        lines.append("%-22s %-9s %-25s %-12s %s" % (
            job["id"], job["state"], reading.isoformat(job["queued"])[:19], job["user"] or "-",
            job["description"]))
        if job["failure"]:
            lines.append("%22s %s" % ("", reading.truncate(job["failure"], 100)))
    lines.append("%d %s jobs in queue %r%s" % (len(data), args.state, args.queue,
                                              " (more: --limit)" if more else ""))
    return data, "\n".join(lines)


def do_show(args, site, root):
    [job] = get_jobs(root, [args.job_id], site)
    data = reading.job_detail(job)
    lines = ["%s: %s" % (key, reading.jsonable(value)) for key, value in data.items() if key != "traceback"]
    if data["traceback"]:
        lines.append(data["traceback"])
    return data, "\n".join(lines)


def act_on_jobs(args, site, root, verb, action):
    jobs = get_jobs(root, args.job_ids, site)
    for job in jobs:  # refuse all before changing any
        allowed = reading.available_actions(job)
        if verb not in allowed:
            raise CliError("job %s is %s: it cannot be %s" % (
                job.id, state_name(job), "retried" if verb == "retry" else "cancelled"))
    question = "%s %d job(s): %s?" % (verb.capitalize(), len(jobs), "; ".join(job.describe() for job in jobs))
    if not confirm(args, question):
        return None
    for job in jobs:
        action(job)
    commit("zasync %s %s" % (verb, " ".join(args.job_ids)))
    data = {"%s" % ("retried" if verb == "retry" else "cancelled"): [job.id for job in jobs]}
    return data, "%s %d job(s)." % ("Queued again" if verb == "retry" else "Cancelled", len(jobs))


def do_retry(args, site, root):
    return act_on_jobs(args, site, root, "retry", admin.retry)


def do_cancel(args, site, root):
    return act_on_jobs(args, site, root, "cancel", admin.cancel)


def do_purge(args, site, root):
    queue = get_queue(root, args.queue)
    count = reading.queue_counts(root, queue, site_path=site_path(site))[args.state]
    if not confirm(args, "Remove the %d %s jobs of queue %r for good?" % (count, args.state, args.queue)):
        return None
    removed = admin.remove_finished(queue, failed=args.state == "failed", site_path=site_path(site))
    commit("zasync purge %s jobs of queue %r" % (args.state, args.queue))
    return {"removed": removed}, "Removed %d %s jobs." % (removed, args.state)


def do_smoke(args, site, root):
    if args.queue:
        get_queue(root, args.queue)
    try:
        data = smoke.run(site, user_name=args.user, queue=args.queue, timeout=args.timeout)
    except smoke.SmokeError as error:
        raise CliError("smoke check failed: %s" % error) from None
    return data, "OK: job %s ran as %s on worker %s (%s, pid %s) %.2f s after it was queued." % (
        data["job"], data["user"], data["worker"], data["host"], data["pid"], data["seconds"])


VERBS = {"status": do_status, "list": do_list, "show": do_show, "retry": do_retry,
         "cancel": do_cancel, "purge": do_purge, "smoke": do_smoke}


def run(args, site):
    """Run the verb of ``args`` on ``site``; print its outcome; return the exit code."""
    try:
        try:
            done = VERBS[args.verb](args, site, reading.queue_root(site))
        finally:
            transaction.abort()
    except (CliError, admin.ActionError) as error:
        print("zasync: error: %s" % error, file=sys.stderr)
        return 1
    except ConflictError:  # a worker changed the same jobs at the same moment
        print("zasync: error: the jobs changed while this ran (a database conflict); nothing "
              "was changed: run the command again", file=sys.stderr)
        return 1
    if done is None:  # not confirmed
        return 1
    data, text = done
    print(json.dumps(reading.jsonable(data), indent=2) if args.json else text)
    return 0


def main(argv=None, site=None):
    """The command; ``site``: an open site instead of -C and --site (the tests)."""
    args = build_parser().parse_args(argv)  # exits 2 on a bad command line, 0 on --help
    if site is not None:
        return run(args, site)
    try:
        site = open_site(os.path.abspath(args.config), args.site)
    except CliError as error:
        print("zasync: error: %s" % error, file=sys.stderr)
        return 1
    try:
        return run(args, site)
    finally:
        connection = site._p_jar
        databases = connection.db().databases.values()
        connection.close()
        for db in databases:
            db.close()  # a FileStorage saves its index


if __name__ == "__main__":
    sys.exit(main())
