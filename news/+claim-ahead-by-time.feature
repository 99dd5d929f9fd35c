A worker claims short jobs ahead of its threads by time: about a tenth of a second of them per
thread, by their average run (from 1 to 31 per thread), instead of 7 per thread whatever they
take; while it files a backlog, 7 at most, so that filing (what the other workers wait for)
goes first. Very short jobs share fewer passes and commits: no-op jobs, 2 processes of 4
threads, one commit per about 70 jobs instead of 20, and past the ZEO server's single-client
commit ceiling.
