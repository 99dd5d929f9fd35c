Queues and scheduling: the default queue runs its jobs one at a time, in queueing order, over
all workers, as plone.app.async did (a site setting raises it); named queues run in parallel
under their concurrency and quotas; delays (``queueJobWithDelay``, ``enqueue_in``), priorities
from -10 to 10, rate limits per quota name, serial and parallel batches, dependencies between
jobs (``depends_on``), unique jobs (``unique_key``) and recurring jobs (an interval or a cron
line). The keyword arguments ``priority``, ``depends_on``, ``run_on_failure``, ``unique_key``,
``quota_names``, ``about`` and the retry policy's are taken by the service, not passed to the
job function.
