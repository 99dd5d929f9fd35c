"""Scripts run with ``zconsole run etc/zope.conf <script> [args]`` (``app`` is bound)."""
