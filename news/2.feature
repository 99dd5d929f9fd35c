The package: Plone 6.2 add-on with install and uninstall profiles, ``make run`` (a demo site whose
process queues and runs jobs, with example jobs at ``@@zasync-demo``) and ``make test``.
