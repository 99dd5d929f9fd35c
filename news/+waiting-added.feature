A worker with idle threads is woken by jobs added to the waiting jobs (a new counter,
``queue.waiting_added``; the queue layout is now 5, migrated when a worker starts), no longer by
every claim of the finisher: a worker left without jobs while the finisher runs the jobs steered
to it no longer looks ten times a second (document jobs, 2 processes: 0.93 of one process's jobs
per CPU-second, was 0.85 to 0.88), and no-op jobs with 2 processes x 4 threads run about 8 %
more per worker CPU-second.
