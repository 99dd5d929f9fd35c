"""Every tunable of collective.zasync, each with why it has its value. Add-ons need not import it.

A leaf: it imports nothing. The worker's own settings (threads, intervals, the
retention, ...) are WorkerSettings (worker/settings.py), set in zope.conf; the
site's are ISettings (plone/settings.py), set in the control panel. These are
the numbers below them, measured once (docs/benchmarks.md) and rarely worth changing.
"""

# -- the dispatcher's loop (worker/dispatcher.py) -------------------------------------------

# Short jobs are claimed ahead of the threads, about this many seconds of them per thread
# (by their average run): one claim commit then serves many jobs, and a thread never waits
# for a pass, while a job claimed ahead waits about that long at most behind the others
# (another worker cannot take it meanwhile). No-op jobs, 2 processes x 4 threads: 7 per
# thread gave 644-854 jobs/s, 15 gave 846-1050, 31 gave 1002-1103 (benchmarks/README.md).
PREFETCH_SECONDS = 0.1
# ... and at least 1, at most this many per thread.
PREFETCH = 31
# ... but at most this many while the finisher's passes file a backlog (jobs left in an inbox or
# a done log): filing is what the other workers wait for, and a pass that claims fewer files
# sooner (a worker arriving at 100,000 queued jobs files them in 28 to 29 s, 34 to 36 without).
PREFETCH_FILING = 7
# Jobs faster than this on average (seconds) are "short": claiming ahead pays for them only.
SHORT_JOB = 0.05
# Where the storage pushes invalidations (ZEO, FileStorage) a pass is woken by them: the poll
# is a fallback, and a slow one costs nothing.
PUSHED_POLL = 5.0
# RelStorage on PostgreSQL: PostgreSQL's notifications wake the pass (core/notifications.py),
# and PUSHED_POLL applies. While a worker cannot listen (PostgreSQL restarting; another
# database) the poll is the wake-up: one cheap query, 20 times a second, keeps the pick-up
# latency near ZEO's.
UNPUSHED_POLL = 0.05
# Seconds between attempts to listen to PostgreSQL's notifications again after losing the
# server: about as long as a restart takes; the worker polls fast meanwhile.
RECONNECT_AFTER = 1.0
# Seconds between retention runs: finished jobs expire by days, a few minutes late is nothing.
RETENTION_EVERY = 300.0
# Seconds after a worker starts before its first retention run: starting is busy enough.
RETENTION_FIRST = 5.0
# Seconds between retries of a step of the loop that failed (the database is away, say).
FAILING_RETRY = 1.0
# A dispatcher declares other workers dead every death interval / REAP_EVERY: a dead worker's
# jobs wait at most a quarter of an interval more.
REAP_EVERY = 4
# Conflicts of one dispatcher transaction before it gives up (and its step is tried again):
# each retry sees the other worker's commit, so 20 in a row means something is wrong.
PASS_CONFLICTS = 20
# Its pause before retrying, as CONFLICT_PAUSE below but short: the other worker's commit is
# visible already, and a long pause would let one worker take all the jobs.
PASS_CONFLICT_PAUSE = 0.002
PASS_CONFLICT_PAUSE_MAX = 0.1

# -- filing and claiming (worker/filing.py, worker/claiming.py) -------------------------------

# Jobs filed from one inbox (or done log) per pass: a backlog of 100,000 is filed in steps
# that keep each commit small, and claims go on between them.
FILE_BATCH = 500
# Waiting entries a claim looks at per queue and pass: enough to get past a backlog held
# back by a quota or a rate limit, few enough that a pass stays short.
CLAIM_SCAN_LIMIT = 200
# Seconds after which any dispatcher files an inbox or done log that its finisher has not:
# the finisher is stopping, hung, or not declared dead yet.
NEGLECTED = 2.0
# Seconds a due job waits for the worker its key hashes to, before another worker takes it.
STEAL_AFTER = 1.0
# Seconds after their last conflict that the jobs of one function run in one worker process
# (worker/steering.py): two processes reindexing one catalog conflict, one process does not.
STEER_FOR = 60.0
# Seconds a hungry worker whose pass found only jobs steered to another worker waits before
# it looks again for a change of the waiting jobs alone (new jobs in an inbox wake it at once).
STEERED_QUIET = 0.1
# A job whose worker died this many times while running it fails: it probably kills workers.
MAX_STARTS = 10

# -- running a job (worker/runner.py, worker/attempt.py) ---------------------------------------

# Seconds a job waits for an unreachable database (a ZEO or PostgreSQL restart) before its
# thread gives up on it (the job is then handed back, not failed).
OUTAGE_LIMIT = 600
# Commits tried to file a job again for its next attempt (retry_on) or to run alone: those
# write trees that dispatchers write all the time, so a few conflicts are normal (and short).
REFILE_TRIES = 20
REFILE_PAUSE = 0.01
REFILE_PAUSE_MAX = 1.0
# The longest pause between commits that store a job's failure or hand it back: the
# database may be restarting.
STORE_PAUSE_MAX = 10.0
# Seconds between looks at an unreachable database.
OUTAGE_POLL = 1.0
# Commits tried to hand a job back to its queue after an error around it.
GIVE_BACK_TRIES = 10
# The pause before conflict retry number n: uniform(0, min(CONFLICT_PAUSE_MAX, CONFLICT_PAUSE * 2**n)).
# Short enough that a retried job loses little, growing so that two jobs stop colliding.
CONFLICT_PAUSE = 0.05
CONFLICT_PAUSE_MAX = 5.0

# -- the conflict gate, in a worker process (worker/conflictgate.py) ---------------------------

# After this many conflicts, a short job's next attempt runs alone among its process's jobs.
GATE_ALONE_AFTER = 2
# Only attempts shorter than this (seconds) go alone: a long job must not stop the others.
GATE_MAX_SECONDS = 2.0
# Seconds an attempt alone waits for the running ones to end before it starts anyway.
GATE_WAIT = 10.0
# Seconds that jobs of one function run one at a time after a short attempt of theirs conflicted.
GATE_SERIAL_FOR = 5.0
# Seconds that jobs of one function do not share commits after a group of theirs conflicted at
# its commit (worker/grouping.py): short, since the conflict was with another process (threads
# of one process take turns) and steering (worker/steering.py) ends those within a pass or two.
GATE_UNGROUP_FOR = 1.0

# -- turns, in a worker process (worker/turns.py) ----------------------------------------------

# While a worker's recent jobs were short and its process's CPU busy while they ran (CPU seconds
# per second at least TURN_BUSY: the GIL lets one thread compute at a time), they take turns, so
# that each runs on the connection the one before it used (worker/turns.py). Jobs that wait
# (network, sleep) use far less CPU than that and never take turns. Jobs that write Plone content
# use 0.6 to 0.9 (the rest: their commit's round trip to the database server, another process).
TURN_BUSY = 0.5
# Seconds a job waits for its turn at most: one that runs long never holds the others up longer.
# A turn may run a group of jobs (GROUP_SECONDS, below, then the last one and the commit).
TURN_WAIT = 0.25

# -- shared commits, in a job thread (worker/grouping.py) --------------------------------------

# Short jobs of one kind, site and user that a thread holds run in one transaction, a savepoint
# between them, and commit once: at most GROUP_SIZE of them (a conflict re-runs that many) ...
GROUP_SIZE = 8
# ... and for at most GROUP_SECONDS: well under TURN_WAIT, so that the other threads' turns come.
GROUP_SECONDS = 0.06

# -- the alone gate, across the cluster (core/alonegate.py) ------------------------------------

# Seconds a job that waits to run alone stops claims before it is claimed anyway.
ALONE_DRAIN = 5.0
# Seconds, at most, that nothing else is claimed while it runs.
ALONE_HOLD = 10.0
# Seconds between dispatcher passes while the gate is in use.
ALONE_LOOK = 0.5

# -- stored structures (core/) ------------------------------------------------------------------

# Finished jobs removed per transaction by the retention: a backlog of a million expired jobs
# costs no more per commit than one of a thousand. A batch (its jobs read in one request) takes
# a few tenths of a second; the worker pings between batches (docs/benchmarks.md: million).
RETENTION_BATCH = 1000
# Seconds after which an inbox read to its end is retired (its writer makes a new one).
IDLE_INBOX = 3600.0
# An inbox's writer drops read entries every PRUNE_EVERY appends, up to PRUNE_LIMIT of them:
# pruning keeps pace with appends, and the appends between read no read mark (which every
# filing pass rewrites, so reading it costs the request a round trip to the database).
PRUNE_EVERY = 8
PRUNE_LIMIT = 160
# Jobs of the default queue that run at once: plone.app.async's one at a time, in order.
DEFAULT_QUEUE_CONCURRENCY = 1
# Waiting entries per tree that a dispatcher loads to find jobs that no longer load.
SET_ASIDE_LOOKED_AT = 500
# Jobs still in inboxes that a listing (My jobs, a site's counts) looks at: a few while a
# worker runs, and a bound when none does.
UNFILED_LOOKED_AT = 1000

# -- a retry policy's defaults (core/retrying.py) ------------------------------------------------

# With retry_on and no max_attempts: two more tries after the first.
DEFAULT_MAX_ATTEMPTS = 3
# Seconds before the second attempt (7.5 on average, with jitter).
DEFAULT_BACKOFF = 10.0
# The pause never grows beyond an hour.
DEFAULT_BACKOFF_MAX = 3600.0

# -- reading (client/) ----------------------------------------------------------------------------

# Jobs per page of the control panel and the REST API (a screenful), and the most a REST client
# may ask for at once.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# Jobs per page of My jobs and an item's jobs: a user's recent jobs fit.
PERSONAL_PAGE_SIZE = 20
# Characters of an argument's or a result's repr shown in a list: a line, not a dump.
REPR_LIMIT = 200

# Finished jobs per queue and outcome that the metrics' histograms are made of.
METRICS_RECENT = 1000
# Waiting entries per tree, and jobs per inbox, looked at for the oldest due job: a scrape
# stays cheap with any backlog.
OLDEST_LOOKED_AT = 200
OLDEST_INBOX_LOOKED_AT = 100
# The health check's longest wait of a due job (seconds), for a site without the setting.
HEALTH_MAX_WAIT = 300

# -- the zasync-worker supervisor (worker/cli.py) --------------------------------------------------

# Seconds a stopping worker process gets beyond stop-timeout (it unregisters and hands back).
STOP_MARGIN = 30.0
# A process that dies after living this long (seconds) is restarted in 1 s; sooner: 2, 4, ... s.
STEADY = 60.0
# The longest pause before restarting a process that keeps dying.
MAX_RESTART_DELAY = 30.0
