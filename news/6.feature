Deployments: ``buildout.cfg`` with a ZEO server, a client instance and two workers (versions in a
local ``versions.cfg``), the pip-only cluster (``make cluster-start``/``cluster-stop``) and
``make test-cluster``, an end-to-end check through HTTP, with one or two databases.
``make test`` runs the cluster check too (``tests/test_cluster.py``).
