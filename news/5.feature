Site Setup control panel "Background jobs" (``@@zasync-controlpanel``): queues with counts by
state, paged job lists, job details with traceback, workers, recurring jobs; retry, cancel and
remove as POST actions protected by plone.protect; a settings form. The same data and actions as
plone.restapi services ``@zasync-queues`` and ``@zasync-jobs``.
Tested over HTTP (every view and service for Anonymous, Member, Editor, Site Administrator and
Manager; actions with and without the CSRF token; 100,000 completed jobs paged) and in headless
Chromium (``tests/test_browser.py``). Translations: ``locales/collective.zasync.pot`` rebuilt by
``make i18n`` and checked by ``tests/test_i18n.py``.
