``set_progress``/``get_progress``, recurring jobs (interval or cron line), ``@transactional``,
persistent arguments passed by reference, and ``unique_key``.
``collective.zasync.transactional`` is the decorator itself, and it refuses to begin while the
caller has uncommitted changes (beginning would throw them away). The README's examples for
progress, recurring jobs, content arguments, unique jobs and ``@transactional`` run as they
stand in ``tests/test_readme.py``.
