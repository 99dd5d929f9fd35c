"""Profile version 1002: "My jobs" in the user menu, and the indexes of the jobs kept. Not for add-ons."""

from collective.zasync.plone.upgrades import index_jobs


def upgrade(context):
    """GenericSetup upgrade step: "My jobs" in the user menu, and the indexes of the jobs kept."""
    context.runImportStepFromProfile("profile-collective.zasync:default", "actions")
    index_jobs("by user and by content item")
