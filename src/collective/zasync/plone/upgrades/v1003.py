"""Profile version 1003: the health check's setting (health_max_wait). Not for add-ons."""


def upgrade(context):
    """GenericSetup upgrade step: the health check's setting (health_max_wait)."""
    context.runImportStepFromProfile("profile-collective.zasync:default", "plone.app.registry")
