The demo site of ``make run`` (not a site that installs the add-on) has a REST service,
``POST @zasync-demo`` with ``{"example": "count" | "later" | "fail-once"}``, that queues an
example job as the logged-in user on the site or an item: a slow report with progress, the same
report an hour later, and ``collective.zasync.dev.examples.fail_once``, which fails and succeeds when
retried. Volto's demo and its end-to-end test start their jobs with it.
