Benchmarks (``make bench``): ZEO commit ceiling, no-op and document job throughput, pick-up
latency, enqueue and claim cost at depth, side by side with Celery+Redis; table, JSON and plot in
``docs/``.
