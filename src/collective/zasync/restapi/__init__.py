"""plone.restapi services: the queues, jobs and workers, My jobs, an item's jobs. A front end:
it builds on client/ only. Not for add-ons (the services are the API).
"""
