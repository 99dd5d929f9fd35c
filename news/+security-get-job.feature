``collective.zasync.api.get_job(job_id)`` looks a job up for a page: the current user's own
job, or any job of the site for a user with "Manage portal"; ``None`` otherwise, as for an
unknown id, so that a job id is never an access key. ``get_progress(job_id)`` looks the job up
the same way. ``IAsyncService.getJob(job_id)`` stays unchecked (for code that checks itself),
and now finds the jobs of the current site only.
