A job that can no longer be loaded (a class of its arguments or result changed incompatibly
since it was queued) no longer stops every worker: it is set aside with its error, listed for
the administrator, who retries it once the code is fixed or removes it; the queue goes on.
