On RelStorage with PostgreSQL, workers are woken by PostgreSQL's notifications
(LISTEN/NOTIFY): a request that queues a job, and a worker whose pass changed what the others
act on, notify after their commit. An idle worker no longer asks PostgreSQL anything 20 times a
second; pick-up latency went from about 38 ms (polling every 50 ms) to about 10 ms. Polling
every 50 ms stays as the fallback while a worker cannot listen.
