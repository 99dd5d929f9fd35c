Measured at a million jobs: ``make bench`` has a ``million`` phase (``benchmarks/run.py --only
million``, ``--million N``) that queues a million jobs with no worker running, lets a worker
arrive at them, then keeps a million finished jobs and lets the retention remove them, on a
stock ZEO server with real worker processes. It reports queueing and claiming at that depth, the
arriving worker's first job, filing time and peak memory, the control panel's and
``@zasync-jobs``' page over HTTP, the workers' pings while the retention runs, the bytes a job
writes over its life and the database's size per 1,000 finished jobs before and after a pack.
The retention removes a million expired jobs two and a half times as fast (3,500 a second on 2
CPUs), its worker pinging on time all along: it reads the jobs of a batch in one request,
removes 1,000 per transaction instead of 200, and only the first live worker (the one that files
for all) does it, so that two workers no longer conflict on every batch. Listing the delayed
jobs of a queue while no worker runs no longer reads every job queued since.
