``collective.zasync.testing.wait_for_result`` waits until a worker has filed the job's end too, so
that what a test does next (the administrator's retry or removal, which refuse a job that ended
a moment ago and is being filed) finds it filed.
