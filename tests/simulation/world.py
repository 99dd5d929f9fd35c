"""The simulated world: one queue database, worker processes, requests, an administrator, faults.

Everything that touches the database is the package's real code: requests
queue with AsyncService, workers are real Dispatchers (their loop and job
threads, JobRunner, filing, claiming, group commit, the conflict gate),
the administrator uses the control panel's admin. Only the threads take
turns (scheduler.py) and the storage, a DemoStorage over a small Zope
application, lets the scheduler in at every commit and injects faults there.
"""

from AccessControl.SecurityManagement import newSecurityManager
from AccessControl.SecurityManagement import noSecurityManager
from collective.zasync.client import admin
from collective.zasync import interfaces
from collective.zasync.core import queue as queue_module
from collective.zasync.api import check_cancelled
from collective.zasync.api import checkpoint
from collective.zasync.api import get_checkpoint
from collective.zasync.api import set_progress
from collective.zasync.core.cancelling import cancel_request
from collective.zasync.worker.dispatcher import Dispatcher
from collective.zasync.worker.registration import WorkerIdentityInUse
from collective.zasync.core.queue import get_queue_root
from collective.zasync.worker.current import current
from collective.zasync.client.service import AsyncService
from collective.zasync.core.setaside import load_error
from collective.zasync.core.setaside import set_aside_jobs
from collective.zasync.client.service import makeJob
from collective.zasync.worker.settings import WorkerSettings
from collective.zasync.core.job import state_name
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from OFS.Folder import Folder
from Products.CMFCore.interfaces import ISiteRoot
from tests.simulation.scheduler import Killed
from tests.simulation.scheduler import Simulation
from transaction.interfaces import TransientError
from ZEO.Exceptions import ClientDisconnected
from ZODB.DB import DB
from ZODB.DemoStorage import DemoStorage
from ZODB.MappingStorage import MappingStorage
from ZODB.POSException import ConflictError
from zope.component import getGlobalSiteManager
from zope.component.hooks import setSite
from zope.component.interfaces import ISite
from zope.interface import implementer

import collections
import itertools
import logging
import transaction
import weakref


log = logging.getLogger("collective.zasync.simulation")

TARGETS = 48  # content items a schedule's jobs work on, one each
USERS = ("alice", "bob")


# -- what is stored before a schedule starts ------------------------------------------------


@implementer(ISiteRoot, ISite)
class SimSite(Folder):
    """A site as the package needs one: a site root with a component registry (the global one)."""

    def getSiteManager(self):
        return getGlobalSiteManager()


class Target(Folder):
    """A content item a job writes to: what the job did is counted here."""

    writes = 0  # the job function's own writes, committed
    notified = 0  # writes of the IJobSuccess subscriber
    steps = ()  # counts of each checkpointed step
    counter = 0  # the "hot" item: one write per job that wrote it


_base = {}


def base_storage():
    """A MappingStorage with a Zope application, its users, the site and its items (made once)."""
    if "storage" in _base:
        return _base["storage"]
    from OFS.Application import Application
    from AccessControl.userfolder import UserFolder

    storage = MappingStorage("base")
    db = DB(storage)
    conn = db.open()
    root = conn.root()
    app = root["Application"] = Application()
    if "acl_users" not in app.objectIds():
        app._setObject("acl_users", UserFolder())
    for name in USERS + ("admin",):
        app.acl_users._doAddUser(name, "secret", ["Manager"] if name == "admin" else ["Member"], [])
    app._setObject("site", SimSite("site"))
    site = app._getOb("site")
    for number in range(TARGETS):
        site._setObject("t%d" % number, Target("t%d" % number))
    site._setObject("hot", Target("hot"))
    get_queue_root(conn)
    transaction.commit()
    conn.close()
    _base["storage"], _base["db"] = storage, db  # (closing the DB would close the storage)
    return storage


# -- the storage: the scheduler's way in at every commit ---------------------------------------


class SimStorage(DemoStorage):
    """Changes over the base; every commit is a yield point, where faults are injected."""

    def __init__(self, world):
        super().__init__(base=base_storage(), changes=MappingStorage("changes"), close_base_on_close=False)
        self._next_oid = 1 << 40  # (DemoStorage picks a random first oid)
        self.world = world

    def tpc_begin(self, transaction, *args, **kwargs):
        self.world.commit_point()
        return super().tpc_begin(transaction, *args, **kwargs)


# -- the jobs: what they do is in their plan ---------------------------------------------------


class Fragile:
    """A job argument whose class "changes" when the world deploys new code: loading it then raises."""

    def __init__(self):
        self.version = 1

    def __setstate__(self, state):
        if World.current is not None and World.current.deployed:
            raise TypeError("Fragile has changed since this job was queued")
        self.__dict__.update(state)


def work(context, plan, fragile=None):
    """The function of every simulated job: the steps of ``plan``, in order.

    write: one write to the job's own item; hot: a write to an item every
    such job writes (conflicts); savepoint; pause: other threads run
    meanwhile; steps-N: N steps, a checkpoint after each; cancel-check;
    progress; raise; transient: a TransientError that is no ConflictError.
    """
    world = World.current
    job = current.job
    world.started(job, context)
    for step in plan:
        if step == "write":
            context.writes += 1
        elif step == "hot":
            hot = context.aq_parent._getOb("hot")
            hot.counter += 1
        elif step == "savepoint":
            transaction.savepoint()
        elif step == "pause":
            world.sim.pause()
        elif step.startswith("steps-"):
            done = get_checkpoint() or 0
            for number in range(done, int(step[6:])):
                counts = list(context.steps) + [0] * (number + 1 - len(context.steps))
                counts[number] += 1
                context.steps = tuple(counts)
                world.sim.pause()
                checkpoint(number + 1)
        elif step == "cancel-check":
            check_cancelled()
        elif step == "progress":
            set_progress(50, {"step": 1})
        elif step == "raise":
            raise ValueError("planned failure")
        elif step == "transient":
            raise TransientError("planned transient error")
    return "done %s" % context.id


def callback(result):
    """A callback added to some jobs: it runs after the job, as the job's user."""
    return "called back with %r" % (result,)


def on_success(event):
    """An IJobSuccess subscriber that writes (registered in some schedules)."""
    job = event.job
    if job.func_name != "tests.simulation.world:work" or job.context_path is None:
        return
    site = job._p_jar.root()["Application"]._getOb("site")
    target = site._getOb(job.context_path.rsplit("/", 1)[-1])
    target.notified += 1


# -- a schedule ---------------------------------------------------------------------------------


class World:
    """One schedule: its database, processes, the jobs it queued, and what it saw."""

    current = None  # the World whose schedule runs now (the job function finds it here)

    def __init__(self, seed, faults=True, steps=400, newsletters=False):
        self.seed = seed
        self.newsletters = newsletters  # a request queues several jobs of one user at once
        self.sim = Simulation(seed)
        self.rng = self.sim.rng
        self.faults = faults
        self.fault_steps = steps  # steps with requests, actions and faults; then it settles
        self.storage = SimStorage(self)
        self.db = DB(self.storage, pool_size=64)
        self.service = AsyncService()
        self.workers = {}  # uuid -> (Process, Dispatcher) of its current process
        self.queued = []  # oids of the jobs that requests committed
        self.aborted = []  # (target name) of jobs queued in requests that aborted
        self.targets = {}  # job oid -> target name
        self.plans = {}  # job oid -> plan
        self.findings = []  # what went wrong, as sentences
        self.cancelled_before_start = {}  # job id -> cancel request seen before it started
        self.conflict_rate = 0.0  # probability that a commit raises ConflictError
        self.outage_until = None  # commits raise ClientDisconnected until this simulated time
        self.subscriber = False
        self.deployed = False  # see deploy()
        self.removed = set()  # oids of jobs set aside that an administrator removed
        self.stats = collections.Counter()  # what happened, for the coverage report
        self._writer_names = weakref.WeakKeyDictionary()
        self._targets = itertools.count()

    # -- commit point --------------------------------------------------------------------

    def commit_point(self):
        actor = self.sim.current()
        if actor is None:
            return  # the test's own thread (setup, checks)
        self.sim.pause()
        if self.outage_until is not None and self.sim.now < self.outage_until:
            raise ClientDisconnected("simulated outage")
        if self.conflict_rate and self.rng.random() < self.conflict_rate:
            raise ConflictError("simulated conflict")

    def writer_id(self, connection):
        """Inbox writers named in the order they first queue (not by memory address)."""
        name = self._writer_names.get(connection)
        if name is None:
            name = self._writer_names[connection] = "writer-%d" % len(self._writer_names)
        return name

    # -- jobs tell what they see ------------------------------------------------------------

    def started(self, job, context):
        request = cancel_request(get_queue_root(job._p_jar, create=False), job.id)
        if request is not None and job.attempts == 1 and not job.checkpoints:
            self.findings.append("job %s started although its cancel request (%r) was committed "
                                 "before it began" % (job.id, request))

    # -- processes ---------------------------------------------------------------------------

    def start_worker(self, uuid, settings, twin=False):
        process = self.sim.process("worker-%s" % uuid)
        dispatcher = Dispatcher(self.db, uuid, settings)

        def boot():
            try:
                dispatcher.start()
            except Killed:
                raise
            except Exception as exc:  # it did not start: its supervisor starts it again later
                self.refusals.append((uuid, exc))
                process.killed = True
                if isinstance(exc, WorkerIdentityInUse):
                    self.stats["twins refused"] += 1
            else:
                if twin:
                    self.stats["twins started (the other one was silent)"] += 1

        if not twin:
            self.workers[uuid] = (process, dispatcher)
        else:
            self.twins.append((process, dispatcher))
        self.sim.spawn("%s/boot" % process.name, process, boot)
        return process, dispatcher

    def stop_worker(self, uuid):
        process, dispatcher = self.workers[uuid]
        if getattr(dispatcher, "_loop_thread", None) is None or dispatcher.stopping.is_set():
            return  # not started yet, or stopping already (one SIGTERM)
        dispatcher.stopping.set()
        self.sim.spawn("%s/stop" % process.name, process, dispatcher.stop)

    def kill_worker(self, uuid):
        process, _dispatcher = self.workers[uuid]
        self.sim.kill(process)

    def worker_settings(self):
        return WorkerSettings(
            threads=self.rng.choice((1, 2)),
            ping_interval=2.0,
            death_interval=10.0,
            retention_days=self.rng.choice((7.0, 0.002)),  # 0.002 days: 173 s
            max_retries=self.rng.choice((1, 3)),
            stop_timeout=2.0,
            time_limit=self.rng.choice((0.0, 0.0, 30.0)),
            group_commit=self.rng.random() < 0.7,
        )

    def request(self, name, user, action, count=1, every=1.0, tries=5, after=None):
        """A process that runs ``action(app, site)`` ``count`` times in requests as ``user``
        (once the actors ``after`` have ended)."""
        process = self.sim.process(name)

        def serve():
            if after is not None:
                self.sim.pause(ready=lambda: all(actor.done for actor in after))
            for _ in range(count):
                self.sim.pause(timeout=self.rng.expovariate(1.0 / every))
                self.in_request(user, action, tries)

        actor = self.sim.spawn(name, process, serve)
        self.requests.append(actor)
        return actor

    def in_request(self, user, action, tries=5):
        """Run ``action(app, site)`` in a transaction as ``user``; retry a conflict ``tries`` times."""
        db_conn = self.db.open()
        try:
            for _attempt in range(tries):
                transaction.begin()
                app = db_conn.root()["Application"]
                site = app.site
                newSecurityManager(None, app.acl_users.getUserById(user).__of__(app.acl_users))
                setSite(site)
                try:
                    done = action(app, site)
                    transaction.commit()
                except (ConflictError, ClientDisconnected):
                    transaction.abort()
                    self.sim.sleep(0.05)
                    continue
                except Killed:
                    transaction.abort()
                    raise
                except admin.ActionError:
                    transaction.abort()
                    return
                finally:
                    noSecurityManager()
                    setSite(None)
                if done is not None:
                    done()
                return
        finally:
            transaction.abort()
            db_conn.close()

    # -- what requests do --------------------------------------------------------------------

    def new_target(self):
        return "t%d" % (next(self._targets) % TARGETS)

    def random_plan(self):
        rng = self.rng
        kinds = [
            ("write",), ("write",), ("write", "pause"), ("nothing",), ("nothing",),
            ("write", "savepoint"), ("write", "savepoint", "write"), ("write", "raise"),
            ("hot",), ("hot", "pause"), ("steps-2",), ("write", "cancel-check"),
            ("progress", "write"), ("write", "pause", "cancel-check"), ("transient",),
        ]
        return rng.choice(kinds)

    def queue_some(self, app, site):
        """A request that queues one to three jobs of a random kind; it may abort."""
        rng = self.rng
        made = []
        for _ in range(rng.choice((1, 1, 2, 3))):
            made.append(self.queue_one(site, made))
        if rng.random() < 0.1:
            transaction.abort()  # a request that fails after queueing: its jobs never run
            self.aborted.extend(name for name, _job in made)
            return None

        def committed():
            for name, job in made:
                self.note_queued(job, name)

        return committed

    def queue_newsletter(self, app, site):
        """A request that queues four to eight short jobs of one user at once (a newsletter, a
        reindex): claimed together, they run in groups that share a commit (worker/grouping.py)."""
        plans = [("write",), ("write",), ("write",), ("write", "savepoint"), ("write", "raise"),
                 ("hot",), ("nothing",), ("steps-2",), ("write", "cancel-check"), ("transient",)]
        made = []
        for _ in range(self.rng.randint(4, 8)):
            name = self.new_target()
            job = self.service.queueJobInQueue("news", (), work, site._getOb(name), self.rng.choice(plans))
            made.append((name, job))

        def committed():
            for name, job in made:
                self.note_queued(job, name)

        return committed

    def queue_one(self, site, earlier):
        rng = self.rng
        name = self.new_target()
        target = site._getOb(name)
        plan = self.random_plan()
        kind = rng.random()
        options = {}
        if rng.random() < 0.2:
            options["priority"] = rng.choice((-1, 1, 5))
        if rng.random() < 0.15:
            options["retry_on"] = (ValueError,)
            options["max_attempts"] = 2
            options["retry_backoff"] = 1.0
        if not self.deployed and rng.random() < 0.1:
            options["fragile"] = Fragile()  # the world may deploy (world.deploy) after this
        if kind < 0.45:
            job = self.service.queueJob(work, target, plan, **options)
        elif kind < 0.6:
            begin = datetime.fromtimestamp(self.sim.now + rng.uniform(1, 20), timezone.utc)
            job = self.service.queueJobWithDelay(None, begin, work, target, plan, **options)
        elif kind < 0.72:
            job = self.service.queueJobInQueue("bulk", ("one",), work, target, plan, **options)
        elif kind < 0.8:
            infos = [makeJob(work, site._getOb(self.new_target()), self.random_plan()) for _ in range(2)]
            job = (self.service.queueSerialJobs if rng.random() < 0.5 else self.service.queueParallelJobs)(*infos)
        elif kind < 0.87 and earlier:
            job = self.service.queueJob(work, target, plan, depends_on=earlier[-1][1],
                                        run_on_failure=rng.random() < 0.5)
        elif kind < 0.93:
            job = self.service.queueJob(work, target, plan, unique_key="k%d" % rng.randrange(3))
        else:
            job = self.service.queueRecurringJob(work, target, 15, plan)
        if rng.random() < 0.15 and job.status == interfaces.PENDING and not job.batch_kind:
            job.addCallback(callback)
        return name, job

    def note_queued(self, job, name):
        if job._p_oid not in self.targets:
            self.queued.append(job._p_oid)
            self.targets[job._p_oid] = name
            self.plans[job._p_oid] = job.args[0] if job.args else ()

    def admin_action(self, app, site):
        """An administrator's action on a random job: cancel, retry, remove, stop a recurrence."""
        root = get_queue_root(site._p_jar)
        jobs = [job for job in map(site._p_jar.get, self.queued) if load_error(job) is None]
        set_aside = [row[0] for row in set_aside_jobs(root)]
        if set_aside and self.rng.random() < 0.5:
            key = self.rng.choice(set_aside)
            if self.rng.random() < 0.5:
                admin.retry_set_aside(root, key)  # (refused while its class is broken)
                return lambda: self.stats.update(["admin: a job set aside, retried"])
            oid = bytes.fromhex(key)
            admin.remove_set_aside(root, key)

            def removed():
                self.removed.add(oid)
                self.stats["admin: a job set aside, removed"] += 1

            return removed
        if not jobs:
            return None
        active = [job for job in jobs if job.status == interfaces.ACTIVE]
        job = self.rng.choice(active if active and self.rng.random() < 0.5 else jobs)
        choice = self.rng.random()
        if choice < 0.4:
            what = "cancel a %s job" % state_name(job)
            admin.cancel(job)
        elif choice < 0.65:
            what = "retry"
            admin.retry(job)
        elif choice < 0.8:
            what = "remove"
            admin.remove(job)
        elif choice < 0.9 and job.recurrence is not None:
            what = "stop a recurring job"
            self.service.cancelRecurringJob(job.recurrence)
        else:
            what = "remove finished"
            queue = root.queues[self.rng.choice(list(root.queues.keys()))]
            admin.remove_finished(queue, failed=self.rng.random() < 0.5)

        def done():
            self.stats["admin: " + what] += 1

        return done

    # -- faults ---------------------------------------------------------------------------------

    def inject_fault(self):
        """Maybe one fault now (between two steps)."""
        rng = self.rng
        if rng.random() > 0.03:
            return
        live = [uuid for uuid, (process, _d) in self.workers.items() if not process.killed]
        dead = [uuid for uuid, (process, _d) in self.workers.items() if process.killed]
        choice = rng.random()
        if choice < 0.25 and len(live) > 1:
            self.stats["fault: kill"] += 1
            self.kill_worker(rng.choice(live))
        elif choice < 0.45 and dead:
            self.stats["fault: restart with the same identity"] += 1
            self.start_worker(rng.choice(dead), self.worker_settings())
        elif choice < 0.6 and live:
            pause = rng.choice((2.0, 12.0))  # 12 s: declared dead meanwhile
            self.stats["fault: pause %gs" % pause] += 1
            self.workers[rng.choice(live)][0].paused_until = self.sim.now + pause
        elif choice < 0.7 and len(live) > 1:
            self.stats["fault: stop"] += 1
            self.stop_worker(rng.choice(live))
        elif choice < 0.75 and live:
            self.stats["fault: twin"] += 1  # a second process with the identity of a live one
            self.start_worker(rng.choice(live), self.worker_settings(), twin=True)
        elif choice < 0.8:
            self.conflict_rate = rng.choice((0.0, 0.05, 0.3))
            self.stats["fault: conflicts at %g" % self.conflict_rate] += 1
        elif choice < 0.85:
            self.stats["fault: deploy"] += 1
            self.deploy()
        else:
            self.stats["fault: outage"] += 1
            self.outage_until = self.sim.now + rng.uniform(0.5, 4.0)

    def deploy(self):
        """New code: the jobs queued with a Fragile argument cannot be loaded any more where
        they are loaded again (a connection's cache keeps what it has until a commit changes it)."""
        self.deployed = True

    def calm_down(self):
        """Faults stop: every worker process alive again, recurrences cancelled."""
        self.conflict_rate = 0.0
        self.outage_until = None
        for uuid, (process, dispatcher) in list(self.workers.items()):
            process.paused_until = None
            stopped = dispatcher.stopping.is_set() if hasattr(dispatcher, "stopping") else False
            if process.killed or stopped:
                self.start_worker(uuid, self.worker_settings())

        def cancel_recurrences(app, site):
            for oid in self.queued:
                job = site._p_jar.get(oid)
                if load_error(job) is None and job.recurrence is not None and not job.recurrence.cancelled:
                    self.service.cancelRecurringJob(job.recurrence)

        self.request("admin-last", "admin", cancel_recurrences, tries=1000, after=list(self.requests))

    def supervise(self):
        """Once faults stop, a supervisor starts again each worker whose start was refused
        (its stopping predecessor still held its identity); True if it started one."""
        refused = [uuid for uuid, (process, _d) in self.workers.items() if process.killed]
        for uuid in refused:
            self.start_worker(uuid, self.worker_settings())
        return bool(refused)

    # -- the whole schedule ---------------------------------------------------------------------

    def setup(self):
        """Queues, workers and the processes that will act."""
        self.refusals = []
        self.twins = []  # (process, dispatcher) of the twins started (see inject_fault)
        self.requests = []
        root_conn = self.db.open()
        root = get_queue_root(root_conn)
        bulk = root.create_queue("bulk")
        bulk.quotas["one"] = 1
        if self.newsletters:
            root.create_queue("news")  # (no limit: the default queue runs one job at a time)
        transaction.commit()
        root_conn.close()
        for number in range(self.rng.choice((2, 2, 3))):
            self.start_worker("w%d" % number, self.worker_settings())
        for user in USERS:
            self.request("request-%s" % user, user, self.queue_some, count=self.rng.choice((2, 3)), every=2.0)
        self.request("admin", "admin", self.admin_action, count=self.rng.choice((0, 2, 4)), every=4.0)
        if self.newsletters:
            self.request("newsletter", self.rng.choice(USERS), self.queue_newsletter,
                         count=self.rng.choice((1, 2)), every=3.0)

    def close(self):
        self.sim.finish()
        self.db.close()


def subscriber(on):
    """Register (or unregister) the writing IJobSuccess subscriber."""
    from collective.zasync.interfaces import IJobSuccess

    gsm = getGlobalSiteManager()
    if on:
        gsm.registerHandler(on_success, (IJobSuccess,))
    else:
        gsm.unregisterHandler(on_success, (IJobSuccess,))


def patch_writer_ids(world):
    """queue.writer_id names a connection by its memory address: the simulation names them in order."""
    original = queue_module.writer_id
    queue_module.writer_id = world.writer_id
    return lambda: setattr(queue_module, "writer_id", original)


def one_day():
    return timedelta(days=1)
