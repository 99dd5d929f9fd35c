The default queue keeps plone.app.async's documented default: its jobs start one at a time, in
queueing order, over all workers; the next starts when the previous one has finished. The site
setting "Jobs of the default queue that run at once" raises it; named queues run in parallel
unless their ``concurrency`` is set. Concurrency and quota limits now hold over several workers
(two dispatchers claiming under a limit conflict, and one of them retries).
