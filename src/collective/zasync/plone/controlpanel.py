"""The settings' control panels: ``@@zasync-settings`` in the Classic UI, plone.restapi's
``@controlpanels/zasync-settings`` in Volto. Not for add-ons.

Volto lists the control panels that ``@controlpanels`` returns and edits
their schema; the queue listing page (``@@zasync-controlpanel``) stays in
the Classic UI, its data is the REST API of restapi/services.py. Listed only
where the add-on is installed (its browser layer). plone.restapi lets anyone
with "Plone Site Setup: Overview" (Site Administrators) change a panel:
ours asks for "Manage portal", as its configlet does (settings.py adds the
Zope root's Manager for the settings of the whole queue database).
"""

from AccessControl import getSecurityManager
from AccessControl import Unauthorized
from collective.zasync.client.permissions import may_change_database
from collective.zasync.i18n import _
from collective.zasync.interfaces import ICollectiveZasyncLayer
from collective.zasync.plone.settings import DATABASE_WIDE_FIELDS
from collective.zasync.plone.settings import ISettings
from plone.app.registry.browser.controlpanel import ControlPanelFormWrapper
from plone.app.registry.browser.controlpanel import RegistryEditForm
from plone.restapi.controlpanels import RegistryConfigletPanel
from plone.restapi.controlpanels.interfaces import IControlpanel
from plone.restapi.deserializer.controlpanels import ControlpanelDeserializeFromJson
from plone.restapi.interfaces import IDeserializeFromJson
from z3c.form.interfaces import DISPLAY_MODE
from zope.component import adapter
from zope.interface import implementer
from zope.interface import Interface


class ISettingsControlpanel(IControlpanel):
    """The control panel of collective.zasync's settings."""


@implementer(ISettingsControlpanel)
@adapter(Interface, ICollectiveZasyncLayer)
class SettingsControlpanel(RegistryConfigletPanel):
    """The settings of ISettings, listed with the "Background jobs" configlet."""

    schema = ISettings
    schema_prefix = "collective.zasync"
    configlet_id = "zasync"  # profiles/default/controlpanel.xml
    configlet_category_id = "plone-advanced"


@implementer(IDeserializeFromJson)
@adapter(ISettingsControlpanel)
class SettingsDeserializer(ControlpanelDeserializeFromJson):
    """PATCH @controlpanels/zasync-settings: "Manage portal", as the configlet declares."""

    def __call__(self, mask_validation_errors=True):
        if not getSecurityManager().checkPermission("Manage portal", self.context):
            raise Unauthorized("Changing the background jobs settings needs the permission Manage portal.")
        return super().__call__(mask_validation_errors=mask_validation_errors)


class SettingsEditForm(RegistryEditForm):
    schema = ISettings
    schema_prefix = "collective.zasync"
    label = _("Background jobs settings")
    description = _("How long finished jobs are kept, and the conflict retries of a job.")

    def updateFields(self):
        super().updateFields()
        if not may_change_database(self.context):
            # Shown, not changed: a display widget is not extracted, so saving leaves them be.
            for name in DATABASE_WIDE_FIELDS:
                self.fields[name].mode = DISPLAY_MODE
            self.description = _(
                "How long finished jobs are kept, and the conflict retries of a job. The retention "
                "and the default queue's concurrency apply to every site of the queue database: "
                "only a Manager of the Zope root changes them.")


class SettingsView(ControlPanelFormWrapper):
    """@@zasync-settings"""

    form = SettingsEditForm
