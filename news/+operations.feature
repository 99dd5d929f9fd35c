Operations: Prometheus metrics (``@@zasync-metrics`` and ``zasync-worker --metrics-port``), a
public health check for alerts (``@@zasync-health``) and a worker's liveness probe
(``/healthz``), and the ``zasync`` command: ``status``, ``list``, ``show``, ``retry``,
``cancel``, ``purge``, and ``smoke``, which an administrator runs after a deployment: it queues a
harmless job and waits until a worker has run it. ``zasync-cluster`` runs a ZEO or RelStorage
cluster to try things out, and says what to install when it finds no stock ZEO server.
