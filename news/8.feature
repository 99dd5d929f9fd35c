Reliability and security suites: a soak with SIGKILLs and a ZEO restart (every job once), poison
jobs, bad input, rights of the queuing user, nothing from the request stored.
