"""Plone glue: registry settings, setup and upgrade steps, zasync.xml, the content rule action,
registered job functions, content and user lifecycle, where the queues live. Not for add-ons,
except ``<zasync:jobFunction>`` (meta.zcml) and ``get_job_function`` (plone/jobfunctions.py).
"""
