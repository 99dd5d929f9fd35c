While a job runs: progress reports (``set_progress``, ``get_progress``) written apart from the
job's own transaction; cancelling a pending job, or asking a running one to stop
(``check_cancelled``); checkpoints that commit a long job in steps and let it resume after a
crash (``checkpoint``, ``get_checkpoint``); retry policies for the errors of remote services
(``retry_on``, ``max_attempts``, exponential backoff with jitter, without holding a thread);
ConflictError retried, with jobs that keep conflicting run apart, in their process and then in
the cluster, rather than failed; a time limit; and ``@collective.zasync.transactional`` for
scripts and work done in steps.
