"""What a request, a script or the command line does: queue jobs, act on them, read them.

The service (IAsyncService), ``@task``, the admin actions, the read model behind
the control panel, the REST API and the command line, the permission checks both
front ends share. Builds on core/; add-ons use its public names through
``collective.zasync.api`` and ``collective.zasync.interfaces``.
"""
