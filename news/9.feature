``set_progress``/``get_progress``, recurring jobs (interval or cron line), ``@transactional``,
persistent arguments passed by reference, and ``unique_key``.
