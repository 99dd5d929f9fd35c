"""The settings in Volto's Site Setup: plone.restapi's ``@controlpanels/zasync-settings``.

Volto lists the control panels that ``@controlpanels`` returns and edits
their schema; the queue listing page (``@@zasync-controlpanel``) stays in
the Classic UI, its data is the REST API of restapi/services.py.
"""

from collective.zasync.settings import ISettings
from plone.restapi.controlpanels import RegistryConfigletPanel
from plone.restapi.interfaces import IControlpanelLayer
from zope.component import adapter
from zope.interface import Interface


@adapter(Interface, IControlpanelLayer)
class SettingsControlpanel(RegistryConfigletPanel):
    """The settings of ISettings, listed with the "Background jobs" configlet."""

    schema = ISettings
    schema_prefix = "collective.zasync"
    configlet_id = "zasync"  # profiles/default/controlpanel.xml
    configlet_category_id = "plone-advanced"
