"""The message factory of the domain ``collective.zasync``. Not for add-ons."""

from zope.i18nmessageid import MessageFactory


_ = MessageFactory("collective.zasync")
