Test layers for add-ons: ``ZASYNC_FIXTURE``, ``ZASYNC_INTEGRATION_TESTING`` and
``ZASYNC_FUNCTIONAL_TESTING`` (a worker in the test process), ``WorkerFunctionalTesting`` for an
add-on's own layer, ``wait_for_result`` and ``wait_until``.
